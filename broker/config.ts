/**
 * The hub's one typed configuration, with defaults that give a working hub on
 * a laptop: in-process broker, SQLite under ./data, loopback only.
 */
import { type Static, Type } from '@sinclair/typebox';
import { DEFAULT_TOPIC_ROOT, formatIssues, validate } from '../shared/index.js';
import { LogLevelSchema } from '../shared/logger.js';
import { parsePostgresUrl } from './store/pg/url.js';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });

export const HubConfig = Type.Object(
  {
    dataDir: Type.String({ minLength: 1 }),
    /**
     * Loopback by default: exposing the broker beyond this machine is a
     * deliberate act (`--host 0.0.0.0`), and off loopback anonymous clients
     * are refused unless allowed (allowAnonymous).
     */
    host: Type.String({ minLength: 1 }),
    mqttPort: Port,
    /** MQTT over WebSocket, for dashboards in a browser. */
    wsPort: Port,
    httpPort: Port,
    /**
     * PEM server certificate and key: with both, the hub also listens for
     * MQTT over TLS, MQTT over secure WebSocket and HTTPS (broker/tls/listeners.ts).
     */
    tlsCertFile: Type.Optional(Type.String({ minLength: 1 })),
    tlsKeyFile: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * PEM CA that signs device certificates: the TLS listeners then ask for a
     * client certificate and verify it (mTLS, the CN is the device id). A
     * client without one may still log in with a username and password.
     */
    tlsClientCaFile: Type.Optional(Type.String({ minLength: 1 })),
    mqttsPort: Port,
    wssPort: Port,
    httpsPort: Port,
    topicRoot: Type.String({ minLength: 1 }),
    /**
     * The AES-256-GCM key that seals secrets and desired documents at rest
     * (base64 of 32 bytes); default `<dataDir>/secrets.key`, created 0600 on
     * first start. `FLOTILLA_SECRETS_KEY` wins over it (broker/store/secrets-key.ts).
     */
    secretsKeyFile: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * Where the release bundles devices install from are (`GET /releases/<file>`,
     * broker/http/install.ts). Unset: the package's dist/bundles when it exists.
     */
    releasesDir: Type.Optional(Type.String({ minLength: 1 })),
    logLevel: LogLevelSchema,
    /** Logs, metrics and events older than this (by arrival at the hub) are deleted. */
    telemetryMaxAgeMs: Type.Integer({ minimum: 60_000 }),
    /** The telemetry file's used size stays under this; the oldest rows go first. */
    telemetryMaxBytes: Type.Integer({ minimum: 1024 * 1024 }),
    /** How often retention runs. */
    retentionIntervalMs: Type.Integer({ minimum: 100 }),
    /**
     * New MQTT connections admitted per second, with a burst of as many
     * (broker/mqtt/admission.ts): a reconnect storm after a restart is taken
     * in paced, the rest told "server unavailable" to retry. 0: no limit.
     */
    maxConnectRate: Type.Integer({ minimum: 0 }),
    /**
     * New MQTT connections per second from one remote address (IPv6: one
     * /64), burst twice as many (broker/mqtt/address-rate.ts); over it,
     * refused at once. 0: no per-address limit.
     */
    maxConnectRatePerAddress: Type.Integer({ minimum: 0 }),
    /**
     * The largest MQTT packet a client may send, in bytes; a bigger one
     * closes its connection before it is read (broker/mqtt/packet-limit.ts).
     * The hub's own dispatcher is not limited.
     */
    maxPacketBytes: Type.Integer({ minimum: 1024, maximum: 268_435_455 }),
    /**
     * MQTT accounts for dashboards: viewers, who may subscribe to device
     * telemetry and status only, and publish nothing (broker/auth/acl.ts).
     */
    /**
     * Clients without credentials (no username, no client certificate) keep
     * full access, as before credentials existed. Default: true only when the
     * hub binds loopback (127.0.0.1, ::1, localhost), Mosquitto 2's "local
     * only mode"; the hub logs a warning at start while it is on.
     */
    allowAnonymous: Type.Boolean(),
    /**
     * `redis://[user:password@]host:port[/db]`: this hub is one replica of a
     * broker clustered on that Redis (broker/mqtt/cluster.ts). Unset: the
     * embedded broker keeps everything in memory, and no Redis code is loaded.
     */
    redis: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * `postgres://role:password@host:5432/database`: the hub's control data (apps, devices,
     * accounts, secrets, rollouts) lives in that PostgreSQL database, shared by every replica
     * (broker/store/pg/). Unset: SQLite in dataDir, and no PostgreSQL code is loaded.
     */
    database: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * The MQTT URL agents registering with this hub are given (`mqtt://`, `mqtts://`, `ws://`,
     * `wss://`, `tcp://`, `tls://`). Replicas behind a load balancer announce the balancer's, so a
     * device keeps one address whichever replica it registered through. Unset: the host the device
     * registered through, with this hub's MQTT port.
     */
    agentMqttUrl: Type.Optional(Type.String({ minLength: 1 })),
    readOnlyUsers: Type.Array(
      Type.Object(
        { username: Type.String({ minLength: 1, maxLength: 128 }), password: Type.String({ minLength: 1 }) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type HubConfig = Static<typeof HubConfig>;

export const HUB_DEFAULTS: HubConfig = {
  dataDir: './data',
  host: '127.0.0.1',
  mqttPort: 1883,
  wsPort: 8083,
  httpPort: 7070,
  // The IANA ports for MQTT over TLS; 8084 and 7443 sit beside 8083 and 7070.
  mqttsPort: 8883,
  wssPort: 8084,
  httpsPort: 7443,
  topicRoot: DEFAULT_TOPIC_ROOT,
  logLevel: 'info',
  // A week, within 1 GiB: fits a small VM's disk. A large fleet wants more bytes or less age.
  telemetryMaxAgeMs: 7 * 24 * 3_600_000,
  telemetryMaxBytes: 1024 * 1024 * 1024,
  retentionIntervalMs: 30_000,
  // With retained lookups by exact topic a connect costs the broker 1-2 ms, so
  // 500/s is at most a core of a 2-core hub; 10,000 devices are back in ~47 s
  // here, against 125 s at 200/s (BENCHMARKS.md, "Reconnect storm").
  maxConnectRate: 500,
  // Carrier NAT puts hundreds of devices behind one public address, all back
  // at once after a restart: 200 in at once, 100/s after, and still at most a
  // fifth of the global rate for one address (broker/mqtt/address-rate.ts).
  maxConnectRatePerAddress: 100,
  // Above every per-topic cap (broker/mqtt/payload-limits.ts), so a device's
  // too-large message is acknowledged and dropped there, never answered by a
  // closed connection it would reconnect and resend into forever.
  maxPacketBytes: 1024 * 1024,
  // For the default host, 127.0.0.1; resolveHubConfig derives it from the host when not given.
  allowAnonymous: true,
  readOnlyUsers: [],
};

/** Addresses only this machine can reach: where anonymous clients are allowed unless said otherwise. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function resolveHubConfig(overrides: Partial<Record<keyof HubConfig, unknown>>): HubConfig {
  const merged = { ...HUB_DEFAULTS, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  if (overrides.allowAnonymous === undefined) merged.allowAnonymous = typeof merged.host === 'string' && isLoopbackHost(merged.host);
  const result = validate(HubConfig, merged);
  if (!result.ok) throw new Error(`invalid hub configuration:\n${formatIssues(result.issues)}`);
  const names = result.value.readOnlyUsers.map((u) => u.username);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate !== undefined) throw new Error(`invalid hub configuration:\nreadOnlyUsers: username "${duplicate}" appears twice`);
  checkTlsFiles(result.value);
  checkRedisUrl(result.value.redis);
  checkDatabaseUrl(result.value.database);
  checkAgentMqttUrl(result.value.agentMqttUrl);
  if (result.value.redis !== undefined && result.value.database === undefined) {
    // Replicas on one broker with a SQLite file each would each plan the fleet from their own data.
    throw new Error(
      'invalid hub configuration:\nredis: replicas sharing a broker on Redis must share one database too: add --database postgres://…',
    );
  }
  return result.value;
}

/** A postgres:// URL naming a host and a role, or an error that says what is wrong with it (without repeating it). */
function checkDatabaseUrl(url: string | undefined): void {
  if (url === undefined) return;
  try {
    parsePostgresUrl(url);
  } catch (err) {
    throw new Error(`invalid hub configuration:\ndatabase: ${(err as Error).message}`);
  }
}

/** The schemes mqtt.js connects over, as the agent's config takes them. */
const AGENT_MQTT_PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ws:', 'wss:'];

/** An MQTT URL an agent can connect to, or an error that says what is wrong with it. */
function checkAgentMqttUrl(url: string | undefined): void {
  if (url === undefined) return;
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    // Not shown: it may hold a password.
  }
  if (parsed === undefined || !AGENT_MQTT_PROTOCOLS.includes(parsed.protocol) || parsed.hostname === '') {
    throw new Error(
      'invalid hub configuration:\nagentMqttUrl: expected the MQTT URL agents connect to, like mqtt://mqtt.example:1883 or mqtts://mqtt.example:8883',
    );
  }
}

/** A Redis URL the client can use, or an error that says what is wrong with it (without repeating a password). */
function checkRedisUrl(url: string | undefined): void {
  if (url === undefined) return;
  const problem = redisUrlProblem(url);
  if (problem) throw new Error(`invalid hub configuration:\nredis: ${problem}`);
}

export function redisUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'expected a URL like redis://host:6379 or rediss://user:password@host:6380/0';
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') return `expected redis:// or rediss://, not ${parsed.protocol}//`;
  if (parsed.hostname === '') return 'the URL names no host';
  if (!/^\/?([0-9]{1,2})?$/.test(parsed.pathname)) return `the path must be a database number (0-15), not ${parsed.pathname}`;
  return undefined;
}

/** A certificate without its key (or a client CA without either) is a half-made TLS setup: say so rather than listen in plaintext only. */
function checkTlsFiles(config: HubConfig): void {
  const { tlsCertFile, tlsKeyFile, tlsClientCaFile } = config;
  if ((tlsCertFile === undefined) !== (tlsKeyFile === undefined)) {
    const missing = tlsCertFile === undefined ? 'tlsCertFile' : 'tlsKeyFile';
    throw new Error(`invalid hub configuration:\n${missing}: required with ${missing === 'tlsCertFile' ? 'tlsKeyFile' : 'tlsCertFile'}`);
  }
  if (tlsClientCaFile !== undefined && tlsCertFile === undefined) {
    throw new Error(
      'invalid hub configuration:\ntlsClientCaFile: needs tlsCertFile and tlsKeyFile (client certificates are asked for on the TLS listeners)',
    );
  }
}
