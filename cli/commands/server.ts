/**
 * `flotilla server` — the hub: MQTT broker, dispatcher, HTTP API, SQLite.
 * The hub module is imported only here, so the other commands start fast.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { HUB_DEFAULTS as DEFAULTS } from '../../broker/config.js';
import { durationText, sizeText } from '../../shared/index.js';
import type { CliIO } from '../context.js';
import {
  type LogLevel,
  logLevelOption,
  parsePort,
  parsePositiveDuration,
  parseSizeArg,
  startUntilSignal,
  topicRootOption,
} from '../lifecycle.js';

interface ServerOptions {
  dataDir: string;
  host: string;
  mqttPort: number;
  wsPort: number;
  httpPort: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  secretsKeyFile?: string;
  releasesDir?: string;
  mqttsPort: number;
  wssPort: number;
  httpsPort: number;
  topicRoot: string;
  logLevel: LogLevel;
  dashboardUser: { username: string; password: string }[];
  anonymous?: 'allow' | 'deny';
  telemetryMaxAge: number;
  telemetryMaxSize: number;
  maxConnectRate: number;
  maxConnectRatePerAddress: number;
  maxPacketSize: number;
  redis?: string;
  database?: string;
  agentMqttUrl?: string;
}

/** `--max-connect-rate`: a whole number of connections per second, 0 for no limit. */
export function parseConnectRate(value: string): number {
  if (!/^[0-9]{1,9}$/.test(value.trim()))
    throw new InvalidArgumentError('expected a whole number of connections per second (0: no limit).');
  return Number(value.trim());
}

/**
 * `--dashboard-user name:password`, repeatable; one value may also hold
 * several, comma-separated (as FLOTILLA_DASHBOARD_USERS does). The password is
 * everything after the first colon, so it may hold colons but not commas.
 */
export function parseDashboardUsers(value: string, previous: { username: string; password: string }[] = []) {
  const users = value
    .split(',')
    .filter((entry) => entry.trim() !== '')
    .map((entry) => {
      const colon = entry.indexOf(':');
      const username = entry.slice(0, colon).trim();
      const password = entry.slice(colon + 1);
      if (colon < 0 || username === '' || password === '') {
        throw new InvalidArgumentError('expected name:password (comma-separated for several).');
      }
      return { username, password };
    });
  return [...previous, ...users];
}

export function registerServer(program: Command, io: CliIO): void {
  program
    .command('server')
    .description('run the hub: MQTT broker (TCP and WebSocket), dispatcher and HTTP API')
    .addOption(new Option('--data-dir <dir>', 'where the SQLite database lives').env('FLOTILLA_DATA_DIR').default(DEFAULTS.dataDir))
    .addOption(new Option('--host <address>', 'address every listener binds to').env('FLOTILLA_HOST').default(DEFAULTS.host))
    .addOption(
      new Option('--mqtt-port <port>', 'MQTT over TCP (0: any free port)')
        .env('FLOTILLA_MQTT_PORT')
        .argParser(parsePort)
        .default(DEFAULTS.mqttPort),
    )
    .addOption(new Option('--ws-port <port>', 'MQTT over WebSocket').env('FLOTILLA_WS_PORT').argParser(parsePort).default(DEFAULTS.wsPort))
    .addOption(new Option('--http-port <port>', 'HTTP API').env('FLOTILLA_HTTP_PORT').argParser(parsePort).default(DEFAULTS.httpPort))
    .addOption(
      new Option('--tls-cert <file>', 'PEM server certificate: with --tls-key, also serve mqtts, wss and https').env('FLOTILLA_TLS_CERT'),
    )
    .addOption(new Option('--tls-key <file>', 'PEM private key of --tls-cert').env('FLOTILLA_TLS_KEY'))
    .addOption(
      new Option('--tls-client-ca <file>', 'PEM CA of device certificates: TLS clients may log in by certificate (CN = device id)').env(
        'FLOTILLA_TLS_CLIENT_CA',
      ),
    )
    .addOption(
      new Option(
        '--secrets-key-file <file>',
        'key sealing secrets at rest (base64 of 32 bytes; default <data-dir>/secrets.key, created 0600); FLOTILLA_SECRETS_KEY holds the key itself and wins',
      ).env('FLOTILLA_SECRETS_KEY_FILE'),
    )
    .addOption(
      new Option(
        '--releases-dir <dir>',
        'the release bundles devices install from (GET /releases/<file>, docs/install.md; default: dist/bundles of this package, if present)',
      ).env('FLOTILLA_RELEASES_DIR'),
    )
    .addOption(
      new Option('--mqtts-port <port>', 'MQTT over TLS').env('FLOTILLA_MQTTS_PORT').argParser(parsePort).default(DEFAULTS.mqttsPort),
    )
    .addOption(
      new Option('--wss-port <port>', 'MQTT over secure WebSocket').env('FLOTILLA_WSS_PORT').argParser(parsePort).default(DEFAULTS.wssPort),
    )
    .addOption(new Option('--https-port <port>', 'HTTPS API').env('FLOTILLA_HTTPS_PORT').argParser(parsePort).default(DEFAULTS.httpsPort))
    .addOption(topicRootOption())
    .addOption(logLevelOption())
    .addOption(
      new Option(
        '--dashboard-user <name:password>',
        'an MQTT account that may only subscribe to device telemetry and status (dashboards); repeatable',
      )
        .env('FLOTILLA_DASHBOARD_USERS')
        .argParser(parseDashboardUsers)
        .default([], 'none'),
    )
    .addOption(
      new Option(
        '--anonymous <allow|deny>',
        'clients without credentials: full access (allow) or refused (deny); default: allow on a loopback --host, else deny',
      )
        .choices(['allow', 'deny'])
        .env('FLOTILLA_ANONYMOUS'),
    )
    .addOption(
      new Option('--telemetry-max-age <duration>', 'delete logs, metrics and events older than this (e.g. 7d, 12h)')
        .env('FLOTILLA_TELEMETRY_MAX_AGE')
        .argParser(parsePositiveDuration)
        .default(DEFAULTS.telemetryMaxAgeMs, durationText(DEFAULTS.telemetryMaxAgeMs)),
    )
    .addOption(
      new Option('--telemetry-max-size <size>', 'keep the telemetry database under this size, oldest rows first (e.g. 1g, 512m)')
        .env('FLOTILLA_TELEMETRY_MAX_SIZE')
        .argParser(parseSizeArg)
        .default(DEFAULTS.telemetryMaxBytes, sizeText(DEFAULTS.telemetryMaxBytes)),
    )
    .addOption(
      new Option('--max-connect-rate <n>', 'new MQTT connections admitted per second, the rest told to retry later (0: no limit)')
        .env('FLOTILLA_MAX_CONNECT_RATE')
        .argParser(parseConnectRate)
        .default(DEFAULTS.maxConnectRate),
    )
    .addOption(
      new Option(
        '--max-connect-rate-per-address <n>',
        'new MQTT connections per second from one address (IPv6: one /64), burst twice as many; sized for devices behind a carrier NAT (0: no limit)',
      )
        .env('FLOTILLA_MAX_CONNECT_RATE_PER_ADDRESS')
        .argParser(parseConnectRate)
        .default(DEFAULTS.maxConnectRatePerAddress),
    )
    .addOption(
      new Option('--max-packet-size <size>', 'largest MQTT packet a client may send (e.g. 1m, 512k); a bigger one closes its connection')
        .env('FLOTILLA_MAX_PACKET_SIZE')
        .argParser(parseSizeArg)
        .default(DEFAULTS.maxPacketBytes, sizeText(DEFAULTS.maxPacketBytes)),
    )
    .addOption(
      new Option(
        '--redis <url>',
        'run as one replica of a hub whose MQTT brokers share this Redis (redis://[user:password@]host:port[/db]): messages, sessions, retained messages and wills',
      ).env('FLOTILLA_REDIS_URL'),
    )
    .addOption(
      new Option(
        '--database <url>',
        "keep the hub's apps, devices, accounts, secrets and rollouts in this PostgreSQL database, shared by replicas, instead of SQLite in --data-dir (postgres://role:password@host:5432/database)",
      ).env('FLOTILLA_DATABASE_URL'),
    )
    .addOption(
      new Option(
        '--agent-mqtt-url <url>',
        "the MQTT URL agents registering here are given, e.g. the load balancer's in front of replicas (default: the host they register through, with --mqtt-port)",
      ).env('FLOTILLA_AGENT_MQTT_URL'),
    )
    .action(async (options: ServerOptions) => {
      const { startHub } = await import('../../broker/hub.js');
      await startUntilSignal('hub', io, () =>
        startHub({
          dataDir: options.dataDir,
          host: options.host,
          mqttPort: options.mqttPort,
          wsPort: options.wsPort,
          httpPort: options.httpPort,
          tlsCertFile: options.tlsCert,
          tlsKeyFile: options.tlsKey,
          tlsClientCaFile: options.tlsClientCa,
          secretsKeyFile: options.secretsKeyFile,
          releasesDir: options.releasesDir,
          mqttsPort: options.mqttsPort,
          wssPort: options.wssPort,
          httpsPort: options.httpsPort,
          topicRoot: options.topicRoot,
          logLevel: options.logLevel,
          readOnlyUsers: options.dashboardUser,
          allowAnonymous: options.anonymous === undefined ? undefined : options.anonymous === 'allow',
          telemetryMaxAgeMs: options.telemetryMaxAge,
          telemetryMaxBytes: options.telemetryMaxSize,
          maxConnectRate: options.maxConnectRate,
          maxConnectRatePerAddress: options.maxConnectRatePerAddress,
          maxPacketBytes: options.maxPacketSize,
          redis: options.redis,
          database: options.database,
          agentMqttUrl: options.agentMqttUrl,
        }),
      );
    });
}
