/**
 * `flotilla agent register --hub URL --token T` — run once on a new device:
 * trades a registration token for the device's own identity (id and secret)
 * and the hub's signing key, and writes them to the agent's config file
 * (mode 0600, see agent-config-file.ts). `flotilla agent` then reads it.
 *
 * `--hub`, `--token` and `--ca` are the CLI's global options: the hub's HTTP
 * URL, here the registration token (sent in the body, not as a bearer), and a
 * CA to trust for an https hub, which is also stored for the agent to pin.
 * The secret is written to the file only, never printed.
 *
 * `--device-id`, `--label`, `--data-dir` and `--config` are the `agent`
 * command's own options, read from it: commander hands every option the
 * parent knows to the parent, wherever it is written (before or after
 * `register`), so register cannot have options of the same names.
 */
import { type Command, Option } from 'commander';
import { checkDataDir, checkEngineSocket, isStartupError } from '../../agent/startup-checks.js';
import { DEVICE_ID_PATTERN, isDeviceId } from '../../shared/index.js';
import { checkWritable, defaultAgentConfigPath, refuseExisting, writeAgentConfigFile } from '../agent-config-file.js';
import type { Registration } from '../auth-api.js';
import { HubClient, parseHubUrl } from '../client.js';
import { type CliIO, globalOptions, render } from '../context.js';
import { CliError, EXIT_HUB_ERROR, UsageError } from '../errors.js';
import { parseLabelAssignments } from '../labels.js';
import { pinnedFetch, readCaFile } from '../pinned-fetch.js';

interface RegisterOptions {
  mqttUrl?: string;
  force?: boolean;
}

/** The options of `flotilla agent` that register uses (agent.ts declares them). */
interface AgentParentOptions {
  deviceId?: string;
  label?: string[];
  config?: string;
  dataDir: string;
}

/** What mqtt.js connects over, as the agent's config schema accepts them. */
const MQTT_PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ws:', 'wss:'];

export function registerAgentRegister(agent: Command, io: CliIO): void {
  agent
    .command('register')
    .description("register this device with a hub: trade a registration token for the device's identity, saved to the agent's config")
    .addOption(
      new Option(
        '--mqtt-url <url>',
        "the hub's MQTT URL for the agent (default: the one the hub announces, else the hub's host with the MQTT port it announces)",
      ),
    )
    .option('--force', 'replace an existing config (registers a new identity)')
    .addHelpText(
      'after',
      [
        '',
        'Also:',
        "  --hub URL          the hub's HTTP API (https://… to register over TLS)",
        '  --token T          the registration token, from `flotilla token create`',
        '  --ca FILE          the CA to trust for an https hub; stored for the agent to pin',
        '  --device-id ID     the device id to ask for (default: the hub chooses one)',
        '  --label KEY=VALUE  a label this device reports (repeatable)',
        "  --data-dir DIR     the agent's data dir; the config goes to DIR/agent.json",
        '  --config PATH      where to write the config instead',
      ].join('\n'),
    )
    .action(async (options: RegisterOptions, command: Command) => {
      const globals = globalOptions(command);
      const agentOptions = (command.parent?.opts() ?? {}) as AgentParentOptions;
      if (sourceOf(command, 'hub') === 'default') {
        throw new UsageError('agent register needs the hub: --hub URL (its HTTP API, e.g. https://hub.example:7443)');
      }
      if (globals.token === undefined || globals.token === '') {
        throw new UsageError('agent register needs a registration token: --token T (make one on the hub with `flotilla token create`)');
      }
      const { deviceId } = agentOptions;
      if (deviceId !== undefined && !isDeviceId(deviceId)) {
        throw new UsageError(`invalid device id "${deviceId}": must match ${DEVICE_ID_PATTERN}`);
      }
      if (options.mqttUrl !== undefined) checkMqttUrl(options.mqttUrl);
      const labels = parseLabelAssignments(agentOptions.label ?? []);
      const path = agentOptions.config ?? defaultAgentConfigPath(agentOptions.dataDir);
      if (!options.force) refuseExisting(path);
      // Before the token is spent: a device whose agent could not start is not registered half-way.
      checkEngineSocket();
      try {
        checkDataDir(agentOptions.dataDir);
      } catch (err) {
        // A data dir register cannot write is bad input to register (exit 2), as its config's dir is.
        throw isStartupError(err) ? new UsageError(err.message) : err;
      }
      checkWritable(path);
      const hubUrl = parseHubUrl(globals.hub);
      const ca = globals.ca === undefined ? undefined : readCaFile(globals.ca);

      const client = new HubClient(globals.hub, { fetch: ca === undefined ? io.fetch : pinnedFetch(ca, io.fetch) });
      const registration = await client.register({
        token: globals.token,
        ...(deviceId !== undefined ? { deviceId } : {}),
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
      });
      checkRegistration(registration);

      const mqttUrl = options.mqttUrl ?? mqttUrlFor(hubUrl, registration.mqtt);
      const plainText = !mqttUrl.startsWith('mqtts:') && !mqttUrl.startsWith('wss:') && !mqttUrl.startsWith('tls:');
      if (options.mqttUrl === undefined && registration.mqtt.url === undefined && hubUrl.protocol === 'https:' && plainText) {
        io.stderr(
          `warning: the hub announces no MQTT TLS port: the agent will connect in plain text to ${mqttUrl} (--mqtt-url to choose)\n`,
        );
      }
      const config = {
        deviceId: registration.deviceId,
        hubUrl: mqttUrl,
        hubHttpUrl: hubUrl.href.replace(/\/$/, ''),
        secret: registration.secret,
        hubKey: registration.hubKey,
        ...(ca !== undefined ? { ca } : {}),
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
      };
      try {
        writeAgentConfigFile(path, config, { force: options.force === true });
      } catch (err) {
        // The secret existed only in this process: the identity is lost, and says how to recover.
        const reason = err instanceof CliError ? err.message : (err as Error).message;
        throw new CliError(
          `device ${registration.deviceId} was registered, but its config could not be written: ${reason}`,
          EXIT_HUB_ERROR,
          [`revoke it (flotilla device revoke ${registration.deviceId}) and register again with a new token`],
        );
      }
      const summary = { deviceId: registration.deviceId, hubUrl: mqttUrl, config: path };
      // The agent keeps its state in its data dir, so the hint names it, and the config only when it lives elsewhere.
      const start = `flotilla agent --data-dir ${agentOptions.dataDir}${path === defaultAgentConfigPath(agentOptions.dataDir) ? '' : ` --config ${path}`}`;
      render(
        io,
        globals.output,
        summary,
        () => `device/${registration.deviceId} registered; config written to ${path} (mode 0600)\n` + `start the agent with: ${start}\n`,
      );
    });
}

/**
 * The agent's MQTT URL: the one the hub announces (`--agent-mqtt-url`, a load
 * balancer's in front of replicas), else from the register URL's host and the
 * ports the hub announces: mqtts when the hub was reached over https and
 * offers TLS, so a device registered over TLS does not fall back to plain text.
 */
export function mqttUrlFor(hubUrl: URL, mqtt: Registration['mqtt']): string {
  if (typeof mqtt.url === 'string' && isMqttUrl(mqtt.url)) return mqtt.url;
  if (hubUrl.protocol === 'https:' && mqtt.tlsPort !== undefined) return `mqtts://${hubUrl.hostname}:${mqtt.tlsPort}`;
  return `mqtt://${hubUrl.hostname}:${mqtt.port}`;
}

/** A hub that answered 200 with something else must not leave a config the agent cannot use. */
function checkRegistration(registration: Registration): void {
  const ok =
    typeof registration?.deviceId === 'string' &&
    isDeviceId(registration.deviceId) &&
    typeof registration.secret === 'string' &&
    registration.secret !== '' &&
    typeof registration.hubKey === 'string' &&
    Number.isInteger(registration.mqtt?.port);
  if (!ok) {
    throw new CliError('the hub answered the registration without a device id, secret, hub key and MQTT port', EXIT_HUB_ERROR, [
      'is the hub older than the CLI?',
    ]);
  }
}

function sourceOf(command: Command, option: string): string | undefined {
  for (let c: Command | null = command; c; c = c.parent) {
    const source = c.getOptionValueSource(option);
    if (source !== undefined) return source;
  }
  return undefined;
}

function isMqttUrl(url: string): boolean {
  try {
    return MQTT_PROTOCOLS.includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

function checkMqttUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new UsageError(`invalid MQTT URL "${url}": expected e.g. mqtts://hub.example:8883`);
  }
  if (!MQTT_PROTOCOLS.includes(protocol)) {
    throw new UsageError(`invalid MQTT URL "${url}": expected one of ${MQTT_PROTOCOLS.map((p) => `${p}//`).join(', ')}`);
  }
}
