/**
 * The hub in one process: embedded Aedes broker, dispatcher and HTTP API over
 * one SQLite file. `startHub({})` gives a working hub on the defaults.
 */
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import type { Client, PublishPacket } from 'aedes';
import mqtt from 'mqtt';
import type { Logger } from 'pino';
import { type DeviceStatus, Topics } from '../shared/index.js';
import { createLogger } from '../shared/logger.js';
import { AccountStore } from './auth/accounts.js';
import { Authenticator, equalSecrets, HUB_USERNAME } from './auth/authenticator.js';
import { ensureAdmin } from './auth/bootstrap.js';
import { DeviceCredentialStore } from './auth/device-credentials.js';
import { randomToken } from './auth/hashing.js';
import { httpAuth } from './auth/http-auth.js';
import { LoginDelay } from './auth/login-delay.js';
import { authMethods } from './auth/methods.js';
import { registerRoute } from './auth/register.js';
import { TokenStore } from './auth/tokens.js';
import { type HubConfig, resolveHubConfig } from './config.js';
import { createApi } from './dispatcher/api.js';
import { apiRequestHandler } from './dispatcher/api-requests.js';
import { Dispatcher } from './dispatcher/dispatcher.js';
import { Rollouts } from './dispatcher/rollouts.js';
import { loadOrCreateSigningKey, SIGNING_KEY_FILE } from './dispatcher/signing-key.js';
import { type DashboardConfig, dashboardRoutes } from './http/dashboard.js';
import { hubKeyRoute } from './http/hub-key.js';
import { metricsRoute } from './http/metrics.js';
import { createHttpHandler } from './http/server.js';
import { chainPreConnect, createAccessControl } from './mqtt/access.js';
import { createConnectionAdmission } from './mqtt/admission.js';
import { closeServer, listen, startBroker } from './mqtt/broker.js';
import { limitPayloads } from './mqtt/payload-limits.js';
import { DevicePresence } from './mqtt/presence.js';
import { tlsPeerCommonName } from './mqtt/tls-identity.js';
import { BrokerTraffic } from './mqtt/traffic.js';
import { AppStore } from './store/apps.js';
import { openDatabase } from './store/db.js';
import { DeviceStore } from './store/devices.js';
import { RolloutStore } from './store/rollouts.js';
import { openSecretsAtRest } from './store/seal-at-rest.js';
import type { SecretCipher } from './store/secret-cipher.js';
import { SecretStore } from './store/secrets.js';
import { SECRETS_KEY_ENV } from './store/secrets-key.js';
import { followRoutes } from './telemetry/follow.js';
import { TelemetryIngest } from './telemetry/ingest.js';
import { ingestBeforeAck } from './telemetry/ingest-before-ack.js';
import { telemetryMethods } from './telemetry/methods.js';
import { TELEMETRY_MIGRATIONS } from './telemetry/migrations.js';
import { createPrometheusRegistry } from './telemetry/prometheus.js';
import { Retention } from './telemetry/retention.js';
import { TelemetryStore } from './telemetry/store.js';
import { startTlsListeners } from './tls/listeners.js';

export interface Hub {
  config: HubConfig;
  /** The TLS ports only when the hub has a certificate and key (tlsCertFile, tlsKeyFile). */
  ports: { mqtt: number; ws: number; http: number; mqtts?: number; wss?: number; https?: number };
  /** The public half of the key desired state is signed with (SPKI PEM): what agents pin. */
  hubKey: string;
  close(): Promise<void>;
}

export interface HubDeps {
  logger?: Logger;
  /** The clock rollouts and device timestamps use (tests inject one). */
  now?: () => Date;
  /** How often rollouts are advanced for device timeouts (default 1 s). */
  rolloutTickMs?: number;
  /** Desired documents the dispatcher has awaiting acknowledgement at once (default DESIRED_CHUNK, 200). */
  desiredChunk?: number;
  /** The secrets key as `FLOTILLA_SECRETS_KEY` would give it (base64 of 32 bytes); default: that env var, else the key file. */
  secretsKey?: string;
}

export async function startHub(overrides: Partial<Record<keyof HubConfig, unknown>> = {}, deps: HubDeps = {}): Promise<Hub> {
  const config = resolveHubConfig(overrides);
  const logger = deps.logger ?? createLogger(config.logLevel, 'flotilla-hub');
  const topics = new Topics(config.topicRoot);
  // Before anything is opened: a refused key file (readable by others) stops the start with nothing to close.
  const signingKey = loadOrCreateSigningKey(config.dataDir);
  if (signingKey.created) {
    logger.info({ component: 'hub', file: join(config.dataDir, SIGNING_KEY_FILE) }, 'created the desired-state signing key');
  }
  const db = openDatabase(join(config.dataDir, 'hub.db'));
  let cipher: SecretCipher;
  try {
    cipher = openSecretsAtRest(db, {
      dataDir: config.dataDir,
      keyFile: config.secretsKeyFile,
      envValue: deps.secretsKey ?? process.env[SECRETS_KEY_ENV],
      logger,
    });
  } catch (err) {
    db.close();
    throw err;
  }
  const now = deps.now ?? (() => new Date());
  const apps = new AppStore(db, now);
  const devices = new DeviceStore(db, cipher, now);
  const secrets = new SecretStore(db, cipher, now);
  const rollouts = new Rollouts({ apps, devices, rollouts: new RolloutStore(db), logger, now });
  const accounts = new AccountStore(db, now);
  const credentials = new DeviceCredentialStore(db, now);
  const tokens = new TokenStore(db, now);
  ensureAdmin(accounts, config.dataDir, logger);

  const telemetryStore = new TelemetryStore(openDatabase(join(config.dataDir, 'telemetry.db'), TELEMETRY_MIGRATIONS));
  const ingest = new TelemetryIngest({ store: telemetryStore, logger });
  const retention = new Retention({
    store: telemetryStore,
    logger,
    maxAgeMs: config.telemetryMaxAgeMs,
    maxBytes: config.telemetryMaxBytes,
    intervalMs: config.retentionIntervalMs,
  });

  // Everything opened so far is closed again if a later step fails (a port in use),
  // so a failed start never leaves a process hanging on open handles.
  // Closed in reverse: the broker stops first, then what is queued is stored, then the files close.
  const cleanups: (() => unknown)[] = [() => db.close(), () => telemetryStore.db.close(), () => ingest.close(), () => retention.stop()];
  retention.start();
  const closeAll = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    logger.info({ component: 'hub' }, 'hub stopped');
  };
  try {
    const traffic = new BrokerTraffic(topics);
    const dispatcherClientId = `flotilla-dispatcher-${process.pid}-${Date.now().toString(36)}`;
    // The dispatcher's password lives only in this process: nothing on disk logs in as the hub.
    const hubPassword = randomToken(32);
    const loginDelay = new LoginDelay();
    const authenticator = new Authenticator({
      accounts,
      credentials,
      readOnlyUsers: config.readOnlyUsers,
      hubPassword,
      allowAnonymous: config.allowAnonymous,
    });
    if (config.allowAnonymous) {
      logger.warn(
        { component: 'hub', host: config.host },
        'anonymous clients are allowed (full access without credentials); use --anonymous deny to require them',
      );
    }
    const access = createAccessControl({
      authenticator,
      owners: {
        hubClientId: dispatcherClientId,
        isRegisteredDevice: (id) => credentials.get(id) !== undefined,
        isAccount: (name) => accounts.get(name) !== undefined,
      },
      topics,
      logger,
      loginDelay,
      peerCommonName: tlsPeerCommonName,
    });
    // Connections whose CONNECT carried the hub's own credentials: the dispatcher's. Neither
    // admission nor the packet-size cap applies to them (it publishes whole desired documents).
    const hubConnections = new WeakSet<Client>();
    // Paces reconnect storms; the hub's own dispatcher is never kept waiting behind its devices.
    const admission = createConnectionAdmission({
      rate: config.maxConnectRate,
      ratePerAddress: config.maxConnectRatePerAddress,
      logger,
      // Its client id alone would let anyone who guessed it skip the queue: the hub's password is checked too.
      exempt: (client, packet) => {
        const hub =
          packet.clientId === dispatcherClientId &&
          packet.username === HUB_USERNAME &&
          equalSecrets(packet.password?.toString('utf8') ?? '', hubPassword);
        if (hub) hubConnections.add(client);
        return hub;
      },
    });
    // Oversized device messages are acknowledged and dropped after the ACL, before ingest.
    const payloadLimits = limitPayloads(access.authorizePublish, { topics, logger });
    const broker = await startBroker({
      host: config.host,
      mqttPort: config.mqttPort,
      wsPort: config.wsPort,
      logger,
      maxPacketBytes: config.maxPacketBytes,
      packetLimitExempt: (client) => hubConnections.has(client),
      hooks: {
        ...access,
        preConnect: chainPreConnect(access.preConnect, admission.preConnect),
        authorizeForward: (client, packet) => {
          const allowed = access.authorizeForward(client, packet);
          return allowed ? traffic.onForward(client, allowed) : allowed;
        },
        authorizePublish: ingestBeforeAck(payloadLimits.authorizePublish, topics, ingest),
      },
    });
    broker.aedes.on('publish', traffic.onPublish);
    access.attach((packet) => broker.aedes.publish(packet, () => undefined));
    /** Closes the connections whose client ids match (a revoked device, a deleted account); how many. */
    const disconnect = (match: (clientId: string) => boolean): number => {
      const clients = (broker.aedes as unknown as { clients: Record<string, { close(): void }> }).clients;
      const matching = Object.entries(clients).filter(([id]) => match(id));
      for (const [, connected] of matching) connected.close();
      return matching.length;
    };
    const presence = new DevicePresence({
      devices,
      logger,
      now,
      onDisconnected: (deviceId) => {
        const offline: DeviceStatus = { online: false, at: now().toISOString() };
        const packet = {
          cmd: 'publish',
          topic: topics.device(deviceId, 'status'),
          payload: Buffer.from(JSON.stringify(offline)),
          qos: 1,
          retain: true,
        };
        broker.aedes.publish(packet as PublishPacket, () => undefined);
      },
    });
    presence.attach(broker.aedes);
    cleanups.push(() => presence.stop());
    cleanups.push(() => broker.close());
    // Runs before the broker closes (cleanups run in reverse): connections held for a token are let go first.
    cleanups.push(() => admission.close());
    const client = await mqtt.connectAsync(`mqtt://${connectableHost(config.host)}:${broker.mqttPort}`, {
      clientId: dispatcherClientId,
      username: HUB_USERNAME,
      password: hubPassword,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1000,
    });
    cleanups.push(() => client.endAsync());
    let dispatcher: Dispatcher | undefined;
    const api = createApi({
      apps,
      devices,
      secrets,
      rollouts,
      desiredMayHaveChanged: () => dispatcher?.scheduleSync(),
      telemetry: telemetryMethods({ store: telemetryStore, ingest, devices, now: () => now().getTime() }),
      auth: authMethods({ db, accounts, credentials, tokens, devices, disconnect }),
      revocations: credentials,
    });
    dispatcher = new Dispatcher({
      mqtt: client,
      topics,
      apps,
      devices,
      secrets,
      apiRequests: apiRequestHandler({
        api,
        respond: (clientId, response) => client.publish(topics.api(clientId, 'response'), JSON.stringify(response), { qos: 1 }),
        logger,
      }),
      rollouts,
      logger,
      signingKey: signingKey.privateKey,
      now,
      ...(deps.rolloutTickMs !== undefined ? { rolloutTickMs: deps.rolloutTickMs } : {}),
      ...(deps.desiredChunk !== undefined ? { desiredChunk: deps.desiredChunk } : {}),
    });
    const started = dispatcher;
    cleanups.push(() => started.stop());
    await dispatcher.start();

    // Known once the TLS listeners are up (below); registration answers only after that.
    let tlsMqttPort: number | undefined;
    const metrics = createPrometheusRegistry(
      {
        devices: () => devices.presence(),
        appPhaseCounts: () => devices.appPhases(),
        latestMetrics: () => ingest.latest.values(),
        ingest: () => ({ lagSeconds: ingest.counters.lagSeconds, stored: ingest.counters.stored, dropped: ingest.counters.invalid }),
      },
      {
        received: () => traffic.received(),
        sent: () => traffic.sent(),
        connectedClients: () => broker.aedes.connectedClients,
        admission: () => admission.counters(),
        dropped: () => payloadLimits.dropped(),
      },
    );
    const dashboard: DashboardConfig = { wsPort: broker.wsPort, topicRoot: config.topicRoot };
    const rawRoutes = [
      ...followRoutes(api, ingest),
      metricsRoute(metrics),
      hubKeyRoute(signingKey.publicKeyPem),
      registerRoute({
        db,
        tokens,
        credentials,
        accounts,
        devices,
        hubKey: () => signingKey.publicKeyPem,
        mqttPorts: () => ({ port: broker.mqttPort, ...(tlsMqttPort !== undefined ? { tlsPort: tlsMqttPort } : {}) }),
        loginDelay,
        logger,
        desiredMayHaveChanged: () => dispatcher?.scheduleSync(),
      }),
      ...dashboardRoutes(dashboard),
    ];
    const httpHandler = createHttpHandler(api, logger, rawRoutes, httpAuth(authenticator, loginDelay, logger));
    const http = createHttpServer(httpHandler);
    const httpPort = await listen(http, config.httpPort, config.host, 'the HTTP API (--http-port)');
    cleanups.push(() => closeServer(http));
    const tls = await startTlsListeners(config, { handleMqtt: broker.handle, httpHandler, logger });
    if (tls) cleanups.push(() => tls.close());
    // Known only now (port 0 is chosen at listen); config.json is rendered per request.
    if (tls) dashboard.wssPort = tls.ports.wss;
    tlsMqttPort = tls?.ports.mqtts;
    logger.info(
      { component: 'hub', dataDir: config.dataDir, httpPort, mqttPort: broker.mqttPort, wsPort: broker.wsPort, ...tls?.ports },
      'hub ready',
    );
    return {
      config,
      ports: { mqtt: broker.mqttPort, ws: broker.wsPort, http: httpPort, ...tls?.ports },
      hubKey: signingKey.publicKeyPem,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
/** The dispatcher connects to its own broker; a wildcard bind address is reached over loopback. */
function connectableHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
