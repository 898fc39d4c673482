/**
 * The agent's one typed configuration. Defaults run an agent beside a hub on
 * the same machine: `flotilla agent` with no flags connects to mqtt://127.0.0.1:1883.
 */
import { hostname } from 'node:os';
import { type Static, Type } from '@sinclair/typebox';
import { DEFAULT_TOPIC_ROOT, DeviceId, formatIssues, Labels, validate } from '../shared/index.js';
import { LogLevelSchema } from '../shared/logger.js';

/** URL schemes the agent's MQTT client connects over. */
export const MQTT_URL_PROTOCOLS = ['mqtt', 'mqtts', 'tcp', 'tls', 'ws', 'wss'] as const;
export const MQTT_URL_PATTERN = `^(${MQTT_URL_PROTOCOLS.join('|')})://`;

/** A tighter re-check loop would only burn the device's CPU. */
export const MIN_RESYNC_MS = 100;

export const AgentConfig = Type.Object(
  {
    deviceId: DeviceId,
    hubUrl: Type.String({ pattern: MQTT_URL_PATTERN }),
    /**
     * The hub's HTTP API, where a desired agent release given as a path is fetched
     * from (`flotilla agent register` writes the `--hub` it used). Absent:
     * `http://<host of hubUrl>:7070` (agent/upgrade/hub-http-url.ts).
     */
    hubHttpUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
    dataDir: Type.String({ minLength: 1 }),
    labels: Labels,
    topicRoot: Type.String({ minLength: 1 }),
    logLevel: LogLevelSchema,
    /** Prefix for Docker container names, for several agents sharing one engine (tests, simulators). */
    containerNamePrefix: Type.String({ pattern: '^([a-zA-Z0-9][a-zA-Z0-9_.-]*)?$' }),
    /** Full re-observation period; Docker events trigger reconciles in between. */
    resyncIntervalMs: Type.Integer({ minimum: MIN_RESYNC_MS }),
    /** Seconds between SIGTERM and SIGKILL when stopping a container. */
    stopTimeoutSeconds: Type.Integer({ minimum: 0, maximum: 600 }),
    /** Free space to leave under Docker's data root after pulling an image; a pull that would eat into it is refused. */
    diskReserveBytes: Type.Integer({ minimum: 0 }),
    /** Minimum time between two state reports, so a flapping container cannot flood the link. */
    stateIntervalMs: Type.Integer({ minimum: 0 }),
    /** Time between two metric samples. */
    metricsIntervalMs: Type.Integer({ minimum: 1000 }),
    /**
     * Logs are published at least this often while lines arrive (and with
     * every metrics sample, whichever comes first), unless the hub asks for
     * a shorter window while someone follows the device's logs…
     */
    logBatchMs: Type.Integer({ minimum: 10 }),
    /**
     * …or as soon as a batch holds this many bytes of lines. At most 256 KiB,
     * so that a batch (plus its last line) stays under the hub's 768 KiB cap
     * on a logs message (broker/mqtt/payload-limits.ts), which acknowledges
     * and drops a bigger one, unless its lines are mostly control characters
     * (six bytes each as JSON).
     */
    logBatchBytes: Type.Integer({ minimum: 1024, maximum: 256 * 1024 }),
    /** A longer line is cut here and marked `truncated` (Docker itself splits lines at 16 KiB). */
    logLineMaxBytes: Type.Integer({ minimum: 64, maximum: 64 * 1024 }),
    /** Lines per second one app may log (a token bucket of twice this burst); more are dropped and counted. */
    logRateLinesPerSecond: Type.Integer({ minimum: 1 }),
    /** All apps' unsent lines together stay under this; beyond it lines are dropped and counted. */
    logBufferBytes: Type.Integer({ minimum: 4096 }),
    /**
     * Where undelivered events, logs and metrics wait: a SQLite file (default
     * `<dataDir>/outbox.db`; on tmpfs such as /dev/shm it spares the SD card
     * and survives agent restarts, not reboots), or `memory`.
     */
    outboxPath: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * Where the log ledger is saved before each log batch: a directory in RAM
     * that outlives the agent process, not a reboot (the data dir gets a copy
     * at each clean stop; telemetry/logs/ledger-files.ts). Default: one under
     * /dev/shm named for the data dir and device; the data dir itself saves
     * it there before each batch.
     */
    logLedgerDir: Type.Optional(Type.String({ minLength: 1 })),
    /** The outbox's cap; beyond it the lowest-priority oldest messages are dropped and reported. */
    outboxMaxBytes: Type.Integer({ minimum: 64 * 1024 }),
    /** How long each class is worth delivering late (outbox/classes.ts has the defaults). */
    outboxTtlMs: Type.Object(
      {
        events: Type.Optional(Type.Integer({ minimum: 1000 })),
        logs: Type.Optional(Type.Integer({ minimum: 1000 })),
        metrics: Type.Optional(Type.Integer({ minimum: 1000 })),
      },
      { additionalProperties: false },
    ),
    /**
     * `auto`: compress telemetry payloads (shared/telemetry-encoding.ts) when
     * the hub says it decodes them; `off`: always plain JSON.
     */
    telemetryEncoding: Type.Union([Type.Literal('auto'), Type.Literal('off')]),
    /** Bytes per second the outbox may send (0 = unlimited), so a backlog does not flood a small link. */
    uplinkBytesPerSecond: Type.Integer({ minimum: 0 }),
    /**
     * Bytes per second the agent's own image downloads may take (0 = unlimited), so
     * control and telemetry traffic keep a share of a thin link. Engine pulls are not paced.
     */
    downlinkBytesPerSecond: Type.Integer({ minimum: 0 }),
    /** Image bytes the agent may download per day of the device's own clock and zone (0 = no budget); beyond it downloads wait for the next day. */
    downloadBudgetBytesPerDay: Type.Integer({ minimum: 0 }),
    /** Where image blobs wait between the registry and the engine (default `<dataDir>/images`); partial ones survive a restart and resume. */
    imageStoreDir: Type.Optional(Type.String({ minLength: 1 })),
    /** A blob download that receives no byte for this long is broken off and resumed. */
    downloadStallTimeoutMs: Type.Integer({ minimum: 1000 }),
    /** MQTT keepalive: a dead link is noticed after 1.5 times this. */
    keepaliveSeconds: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** The device's secret from `flotilla agent register`: the MQTT password (the username is the device id). */
    secret: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * The hub's Ed25519 public key (PEM), pinned at registration: desired
     * state not signed by it is refused. Without it nothing is verified.
     */
    hubKey: Type.Optional(Type.String({ minLength: 1 })),
    /** At most one `desired-rejected` event per reason this often (the rest are counted into the next), so forgeries cannot fill the outbox. */
    rejectionEventIntervalMs: Type.Integer({ minimum: 0 }),
    /** PEM CA certificate(s) trusted for mqtts/wss instead of the system's: the pinned CA. */
    ca: Type.Optional(Type.String({ minLength: 1 })),
    /** PEM client certificate and key for mutual TLS (the certificate's CN is the device id). */
    tlsCert: Type.Optional(Type.String({ minLength: 1 })),
    tlsKey: Type.Optional(Type.String({ minLength: 1 })),
    /** Remote access may open a login shell on the device's host (`flotilla shell`); off unless the device's owner turns it on. */
    allowHostShell: Type.Boolean(),
    /** Remote sessions (exec, shell, port-forward) open at once, at most; one more is answered `busy`. */
    maxSessions: Type.Integer({ minimum: 1, maximum: 1000 }),
    /** A remote session with no data either way for this long is ended. */
    sessionIdleTimeoutMs: Type.Integer({ minimum: 1000 }),
  },
  { additionalProperties: false },
);
export type AgentConfig = Static<typeof AgentConfig>;

/** The host name as a device id: lower case, anything else replaced by "-". */
export function defaultDeviceId(): string {
  const id = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63);
  return id === '' ? 'device' : id;
}

/** Every default but the device id (the host name: defaultDeviceId). The CLI's flags show and use these. */
export const AGENT_DEFAULTS: Readonly<Omit<AgentConfig, 'deviceId'>> = {
  hubUrl: 'mqtt://127.0.0.1:1883',
  dataDir: './data/agent',
  labels: {},
  containerNamePrefix: '',
  topicRoot: DEFAULT_TOPIC_ROOT,
  logLevel: 'info',
  resyncIntervalMs: 10_000,
  stopTimeoutSeconds: 10,
  stateIntervalMs: 500,
  diskReserveBytes: 256 * 1024 * 1024,
  metricsIntervalMs: 10_000,
  // Every packet costs the link TCP/IP headers, a PUBACK and its ACK (about
  // 160 bytes): a batch a metrics interval long carries many lines for that
  // price, and it goes out with the sample. `logs -f` gets a short window on
  // request (wiring/telemetry.ts).
  logBatchMs: 10_000,
  logBatchBytes: 64 * 1024,
  logLineMaxBytes: 16 * 1024,
  logRateLinesPerSecond: 200,
  logBufferBytes: 1024 * 1024,
  outboxMaxBytes: 64 * 1024 * 1024,
  outboxTtlMs: {},
  // 256 KiB/s (2 Mbit/s) is well within 4G uplinks and leaves room on 3G.
  uplinkBytesPerSecond: 256 * 1024,
  downlinkBytesPerSecond: 0,
  downloadBudgetBytesPerDay: 0,
  // Long enough for a cellular link's hiccup, short enough that a dead connection is not waited on for minutes.
  downloadStallTimeoutMs: 30_000,
  telemetryEncoding: 'auto',
  // 30 s keeps a cellular NAT mapping alive (carriers drop idle ones after
  // 60 s or more) and finds a half-open link within 45 s, for ~300 KB a day.
  keepaliveSeconds: 30,
  rejectionEventIntervalMs: 60_000,
  allowHostShell: false,
  // Each session holds a process or sockets and up to two windows of buffers (256 KiB each): 8 stay within a few MiB.
  maxSessions: 8,
  sessionIdleTimeoutMs: 15 * 60_000,
};

export function resolveAgentConfig(overrides: Partial<Record<keyof AgentConfig, unknown>>): AgentConfig {
  const defaults: AgentConfig = { ...AGENT_DEFAULTS, deviceId: defaultDeviceId() };
  const merged = { ...defaults, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  const result = validate(AgentConfig, merged);
  if (!result.ok) throw new Error(`invalid agent configuration:\n${formatIssues(result.issues)}`);
  return result.value;
}
