/**
 * `flotilla agent` — the device side: converges Docker to the hub's desired
 * state. The agent module is imported only here.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { AGENT_DEFAULTS, AgentConfig, defaultDeviceId, MQTT_URL_PROTOCOLS } from '../../agent/config.js';
import { DEFAULT_OUTBOX_TTL_MS, OUTBOX_CLASSES, type OutboxClass } from '../../agent/outbox/classes.js';
import { checkDataDir, checkEngineSocket } from '../../agent/startup-checks.js';
import { DEVICE_ID_PATTERN, durationText, isDeviceId, sizeText } from '../../shared/index.js';
import { agentIdentitySettings } from '../agent-file-settings.js';
import type { CliIO } from '../context.js';
import { UsageError } from '../errors.js';
import { readHubKeyFile } from '../hub-key-file.js';
import { parseLabelAssignments } from '../labels.js';
import { type LogLevel, logLevelOption, parsePositiveDuration, parseSizeArg, startUntilSignal, topicRootOption } from '../lifecycle.js';
import { registerAgentRegister } from './agent-register.js';
import { registerAgentSwap } from './agent-swap.js';
import { registerAgentUpgrade } from './agent-upgrade.js';

interface AgentOptions {
  deviceId?: string;
  hubUrl: string;
  hubHttpUrl?: string;
  dataDir: string;
  label: string[];
  topicRoot: string;
  logLevel: LogLevel;
  resyncInterval: number;
  containerNamePrefix: string;
  diskReserve: number;
  logRate: number;
  logBuffer: number;
  metricsInterval: number;
  logBatchWindow: number;
  telemetryEncoding: 'auto' | 'off';
  outbox?: string;
  logLedgerDir?: string;
  outboxMaxSize: number;
  outboxTtl: Partial<Record<OutboxClass, number>>;
  uplinkRate: number;
  downlinkRate: number;
  downloadBudget: number;
  imageStore?: string;
  downloadStallTimeout: number;
  keepalive: number;
  config?: string;
  cert?: string;
  key?: string;
  hubKey?: string;
  allowHostShell: boolean;
  maxSessions: number;
  sessionIdleTimeout: number;
}

const MQTT_PROTOCOLS = MQTT_URL_PROTOCOLS.map((protocol) => `${protocol}:`);
const DEFAULTS = AGENT_DEFAULTS;

/** The agent config schema's lower bound for `key`, so a flag is refused with the same bound the agent would apply. */
function minimumOf(key: keyof typeof AgentConfig.properties): number {
  const minimum = (AgentConfig.properties[key] as { minimum?: number }).minimum;
  if (minimum === undefined) throw new Error(`AgentConfig.${key} has no minimum`);
  return minimum;
}

/** The agent config schema's upper bound for `key`. */
function maximumOf(key: keyof typeof AgentConfig.properties): number {
  const maximum = (AgentConfig.properties[key] as { maximum?: number }).maximum;
  if (maximum === undefined) throw new Error(`AgentConfig.${key} has no maximum`);
  return maximum;
}

export function registerAgent(program: Command, io: CliIO): void {
  const agent = program
    .command('agent')
    .description("run a device's agent: follows the hub's desired state and drives the local Docker Engine")
    .addOption(
      new Option(
        '--config <path>',
        'the config `agent register` writes and the agent reads (default: <data-dir>/agent.json, if present); flags win over it',
      ).env('FLOTILLA_AGENT_CONFIG'),
    )
    .addOption(new Option('--cert <file>', 'client certificate (PEM) for mutual TLS; its CN is the device id'))
    .addOption(new Option('--key <file>', "the client certificate's private key (PEM)"))
    .addOption(
      new Option(
        '--hub-key <file>',
        "the hub's public key (PEM, or the JSON of GET /api/v1/hub/key): desired state not signed with it is refused (default: the key `agent register` pinned)",
      ).env('FLOTILLA_HUB_KEY'),
    )
    .addHelpText('after', '\nAlso: --ca FILE (global) is the CA the agent trusts for mqtts/wss instead of the system store.')
    .addOption(new Option('--device-id <id>', "this device's id (default: the host name, lower-cased)").env('FLOTILLA_DEVICE_ID'))
    .addOption(new Option('--hub-url <url>', "the hub's MQTT broker").env('FLOTILLA_HUB_URL').default(DEFAULTS.hubUrl))
    .addOption(
      new Option(
        '--hub-http-url <url>',
        "the hub's HTTP API, where the agent fetches its own new releases (default: the --hub it registered with, else http://<host of --hub-url>:7070)",
      ).env('FLOTILLA_HUB_HTTP_URL'),
    )
    .addOption(new Option('--data-dir <dir>', "the agent's local state").env('FLOTILLA_AGENT_DATA_DIR').default(DEFAULTS.dataDir))
    .addOption(new Option('--label <key=value>', 'a label this device reports (repeatable)').argParser(collect).default([]))
    .addOption(topicRootOption())
    .addOption(logLevelOption())
    .addOption(
      new Option('--resync-interval <duration>', 'how often to re-check Docker against the desired state')
        .argParser(durationAtLeast(minimumOf('resyncIntervalMs')))
        .default(DEFAULTS.resyncIntervalMs, durationText(DEFAULTS.resyncIntervalMs)),
    )
    .addOption(
      new Option('--container-name-prefix <prefix>', 'prefix for Docker container names, when several agents share one Docker Engine')
        .env('FLOTILLA_CONTAINER_NAME_PREFIX')
        .argParser(parseContainerNamePrefix)
        .default(DEFAULTS.containerNamePrefix),
    )
    .addOption(
      new Option('--disk-reserve <size>', "free space to keep under Docker's data root when pulling (e.g. 256m, 1g)")
        .env('FLOTILLA_DISK_RESERVE')
        .argParser(parseSizeArg)
        .default(DEFAULTS.diskReserveBytes, sizeText(DEFAULTS.diskReserveBytes)),
    )
    .addOption(
      new Option('--metrics-interval <duration>', 'how often to sample and publish host and container metrics (at least 1s)')
        .env('FLOTILLA_METRICS_INTERVAL')
        .argParser(durationAtLeast(minimumOf('metricsIntervalMs')))
        .default(DEFAULTS.metricsIntervalMs, durationText(DEFAULTS.metricsIntervalMs)),
    )
    .addOption(
      new Option(
        '--log-batch-window <duration>',
        'send log lines once the oldest waiting is this old, or with the next metrics sample if sooner (while someone follows the logs the hub asks for 250ms)',
      )
        .env('FLOTILLA_LOG_BATCH_WINDOW')
        .argParser(durationAtLeast(minimumOf('logBatchMs')))
        .default(DEFAULTS.logBatchMs, durationText(DEFAULTS.logBatchMs)),
    )
    .addOption(
      new Option('--telemetry-encoding <mode>', 'auto: compress logs, metrics and events for a hub that decodes them; off: plain JSON')
        .env('FLOTILLA_TELEMETRY_ENCODING')
        .choices(['auto', 'off'])
        .default(DEFAULTS.telemetryEncoding),
    )
    .addOption(
      new Option('--log-rate <lines/s>', 'log lines per second one app may send (burst: twice that); more are dropped and counted')
        .env('FLOTILLA_LOG_RATE')
        .argParser(parseLogRate)
        .default(DEFAULTS.logRateLinesPerSecond),
    )
    .addOption(
      new Option('--log-buffer <size>', 'unsent log lines of all apps together (e.g. 1m); beyond it lines are dropped and counted')
        .env('FLOTILLA_LOG_BUFFER')
        .argParser(sizeAtLeast(minimumOf('logBufferBytes')))
        .default(DEFAULTS.logBufferBytes, sizeText(DEFAULTS.logBufferBytes)),
    )
    .addOption(
      new Option(
        '--outbox <path>',
        'where undelivered events, logs and metrics wait: a file (on tmpfs to spare the SD card), or "memory" (default: <data-dir>/outbox.db)',
      ).env('FLOTILLA_OUTBOX'),
    )
    .addOption(
      new Option(
        '--log-ledger-dir <dir>',
        'directory in RAM (tmpfs) where the log ledger is saved before each log batch, so a killed agent sends no line twice without writing the SD card; the data dir gets a copy at each clean stop (default: /dev/shm/flotilla-agent-<hash of data dir and device id>; the data dir itself: saved there before each batch)',
      ).env('FLOTILLA_LOG_LEDGER_DIR'),
    )
    .addOption(
      new Option(
        '--outbox-max-size <size>',
        "the outbox's cap (e.g. 64m); beyond it the lowest-priority oldest messages are dropped and reported",
      )
        .env('FLOTILLA_OUTBOX_MAX_SIZE')
        .argParser(sizeAtLeast(minimumOf('outboxMaxBytes')))
        .default(DEFAULTS.outboxMaxBytes, sizeText(DEFAULTS.outboxMaxBytes)),
    )
    .addOption(
      new Option('--outbox-ttl <class=duration>', 'how long a class is worth delivering late, e.g. metrics=1h (repeatable)')
        .argParser(collectOutboxTtl)
        .default({}, OUTBOX_CLASSES.map((cls) => `${cls}=${durationText(DEFAULT_OUTBOX_TTL_MS[cls])}`).join(', ')),
    )
    .addOption(
      new Option(
        '--uplink-rate <size>',
        'bytes per second the outbox may send (e.g. 64k), so a backlog does not flood a small link; 0 = unlimited',
      )
        .env('FLOTILLA_UPLINK_RATE')
        .argParser(sizeAtLeast(minimumOf('uplinkBytesPerSecond')))
        .default(DEFAULTS.uplinkBytesPerSecond, sizeText(DEFAULTS.uplinkBytesPerSecond)),
    )
    .addOption(
      new Option(
        '--downlink-rate <size>',
        "bytes per second the agent's own image downloads may take (e.g. 256k), so control and telemetry keep a share of the link; 0 = unlimited",
      )
        .env('FLOTILLA_DOWNLINK_RATE')
        .argParser(sizeAtLeast(minimumOf('downlinkBytesPerSecond')))
        .default(DEFAULTS.downlinkBytesPerSecond, sizeText(DEFAULTS.downlinkBytesPerSecond)),
    )
    .addOption(
      new Option(
        '--download-budget <size>',
        "image bytes the agent may download per day of the device's clock and zone (e.g. 500m); beyond it downloads wait for the next day; 0 = no budget",
      )
        .env('FLOTILLA_DOWNLOAD_BUDGET')
        .argParser(sizeAtLeast(minimumOf('downloadBudgetBytesPerDay')))
        .default(DEFAULTS.downloadBudgetBytesPerDay, sizeText(DEFAULTS.downloadBudgetBytesPerDay)),
    )
    .addOption(
      new Option(
        '--image-store <dir>',
        'where image layers wait between the registry and the engine; partial ones resume after a restart (default: <data-dir>/images)',
      ).env('FLOTILLA_IMAGE_STORE'),
    )
    .addOption(
      new Option('--download-stall-timeout <duration>', 'a layer download that receives nothing for this long is broken off and resumed')
        .env('FLOTILLA_DOWNLOAD_STALL_TIMEOUT')
        .argParser(durationAtLeast(minimumOf('downloadStallTimeoutMs')))
        .default(DEFAULTS.downloadStallTimeoutMs, durationText(DEFAULTS.downloadStallTimeoutMs)),
    )
    .addOption(
      new Option('--keepalive <duration>', 'MQTT keepalive: a dead link is noticed after 1.5 times this')
        .env('FLOTILLA_KEEPALIVE')
        .argParser(durationAtLeast(minimumOf('keepaliveSeconds') * 1000))
        .default(DEFAULTS.keepaliveSeconds * 1000, durationText(DEFAULTS.keepaliveSeconds * 1000)),
    )
    .addOption(
      new Option('--allow-host-shell', 'let admins open a login shell on this host over the hub (`flotilla shell`)').default(
        DEFAULTS.allowHostShell,
      ),
    )
    .addOption(
      new Option('--max-sessions <n>', 'remote sessions (exec, shell, port-forward) open at once; more are refused as busy')
        .env('FLOTILLA_MAX_SESSIONS')
        .argParser(wholeNumberAtLeast(minimumOf('maxSessions'), maximumOf('maxSessions')))
        .default(DEFAULTS.maxSessions),
    )
    .addOption(
      new Option('--session-idle-timeout <duration>', 'a remote session with no data either way for this long is ended')
        .env('FLOTILLA_SESSION_IDLE_TIMEOUT')
        .argParser(durationAtLeast(minimumOf('sessionIdleTimeoutMs')))
        .default(DEFAULTS.sessionIdleTimeoutMs, durationText(DEFAULTS.sessionIdleTimeoutMs)),
    )
    .action(async (options: AgentOptions, command: Command) => {
      // Before the config in the data dir is read: an engine or a data dir the agent cannot use is said in one line, with the fix.
      checkEngineSocket();
      if (existsSync(options.dataDir)) checkDataDir(options.dataDir);
      const identity = agentIdentitySettings({ ...options, labels: parseLabelAssignments(options.label) }, command, io);
      const deviceId = identity.deviceId ?? defaultDeviceId();
      if (!isDeviceId(deviceId)) {
        throw new UsageError(
          options.deviceId === undefined
            ? `cannot derive a device id from the host name "${hostname()}": pass --device-id`
            : `invalid device id "${deviceId}": must match ${DEVICE_ID_PATTERN}`,
        );
      }
      checkMqttUrl(identity.hubUrl);
      // This process is the agent: its V8 flags are set before the agent's code loads (agent/v8-flags.ts).
      (await import('../../agent/v8-flags.js')).useAgentV8Flags();
      const { startAgent } = await import('../../agent/agent.js');
      await startUntilSignal('agent', io, () =>
        startAgent({
          deviceId,
          hubUrl: identity.hubUrl,
          hubHttpUrl: identity.hubHttpUrl,
          dataDir: options.dataDir,
          labels: identity.labels,
          secret: identity.secret,
          // Read here, not in the agent: a wrong file is a usage error before anything starts.
          hubKey: options.hubKey !== undefined ? readHubKeyFile(options.hubKey) : identity.hubKey,
          ca: identity.ca,
          tlsCert: identity.tlsCert,
          tlsKey: identity.tlsKey,
          topicRoot: options.topicRoot,
          logLevel: options.logLevel,
          resyncIntervalMs: options.resyncInterval,
          containerNamePrefix: options.containerNamePrefix,
          diskReserveBytes: options.diskReserve,
          logRateLinesPerSecond: options.logRate,
          logBufferBytes: options.logBuffer,
          metricsIntervalMs: options.metricsInterval,
          logBatchMs: options.logBatchWindow,
          telemetryEncoding: options.telemetryEncoding,
          outboxPath: options.outbox,
          logLedgerDir: options.logLedgerDir,
          outboxMaxBytes: options.outboxMaxSize,
          outboxTtlMs: options.outboxTtl,
          uplinkBytesPerSecond: options.uplinkRate,
          downlinkBytesPerSecond: options.downlinkRate,
          downloadBudgetBytesPerDay: options.downloadBudget,
          imageStoreDir: options.imageStore,
          downloadStallTimeoutMs: options.downloadStallTimeout,
          keepaliveSeconds: Math.ceil(options.keepalive / 1000),
          allowHostShell: options.allowHostShell,
          maxSessions: options.maxSessions,
          sessionIdleTimeoutMs: options.sessionIdleTimeout,
        }),
      );
    });
  registerAgentRegister(agent, io);
  registerAgentUpgrade(agent, io);
  registerAgentSwap(agent, io);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The agent's config pattern: Docker accepts these characters in container names. */
function parseContainerNamePrefix(value: string): string {
  if (!/^([a-zA-Z0-9][a-zA-Z0-9_.-]*)?$/.test(value)) {
    throw new InvalidArgumentError('expected letters, digits, "_", "." or "-", starting with a letter or digit.');
  }
  return value;
}

/** A duration flag the agent's config refuses below `minMs`. */
function durationAtLeast(minMs: number): (value: string) => number {
  return (value) => {
    const ms = parsePositiveDuration(value);
    if (ms < minMs) throw new InvalidArgumentError(`must be at least ${durationText(minMs)}.`);
    return ms;
  };
}

function checkMqttUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new UsageError(`invalid hub URL "${url}": expected e.g. mqtt://hub.local:1883`);
  }
  if (!MQTT_PROTOCOLS.includes(protocol)) {
    throw new UsageError(`invalid hub URL "${url}": expected one of ${MQTT_PROTOCOLS.map((p) => `${p}//`).join(', ')}`);
  }
}

function parseLogRate(value: string): number {
  const rate = Number(value);
  if (!/^[0-9]+$/.test(value.trim()) || !Number.isSafeInteger(rate) || rate < 1) {
    throw new InvalidArgumentError('expected a whole number of lines per second, at least 1.');
  }
  return rate;
}

/** A whole-number flag within the agent config's bounds. */
function wholeNumberAtLeast(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^[0-9]+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

/** A size flag the agent's config refuses below `minBytes`. */
function sizeAtLeast(minBytes: number): (value: string) => number {
  return (value) => {
    const bytes = parseSizeArg(value);
    if (bytes < minBytes) throw new InvalidArgumentError(`must be at least ${sizeText(minBytes)}.`);
    return bytes;
  };
}

function collectOutboxTtl(value: string, previous: Partial<Record<OutboxClass, number>>): Partial<Record<OutboxClass, number>> {
  const [cls, duration] = value.split('=', 2);
  if (!OUTBOX_CLASSES.includes(cls as OutboxClass) || duration === undefined) {
    throw new InvalidArgumentError(`expected CLASS=DURATION with CLASS one of ${OUTBOX_CLASSES.join(', ')}, e.g. metrics=1h.`);
  }
  return { ...previous, [cls as OutboxClass]: durationAtLeast(1000)(duration) };
}
