/**
 * The hub in one process: embedded Aedes broker, dispatcher and HTTP API over
 * one SQLite file. `startHub({})` gives a working hub on the defaults.
 *
 * Started in named steps (broker/hub/), each registering what it opened with
 * one Closer, which closes it all in reverse: on `close()`, and on a start
 * that fails half-way. Parts that must reach each other later talk through a
 * signal: the API and registration say "desired state may have changed", the
 * dispatcher, started after them, listens.
 */
import type { Logger } from 'pino';
import { Closer } from '../shared/closer.js';
import { Topics } from '../shared/index.js';
import { createLogger } from '../shared/logger.js';
import { PROTOCOL_VERSIONS } from '../shared/protocol-version.js';
import { Signal } from '../shared/signal.js';
import { usePrecompiled } from '../shared/validate.js';
import { VALIDATORS } from '../shared/validators/hub.generated.js';
import { flotillaVersion } from '../shared/version.js';
import { Authenticator } from './auth/authenticator.js';
import { LoginDelay } from './auth/login-delay.js';
import { authMethods } from './auth/methods.js';
import { type HubConfig, resolveHubConfig } from './config.js';
import type { AgentMethodDeps } from './dispatcher/agent-methods.js';
import type { AgentRollouts } from './dispatcher/agent-rollouts.js';
import { createApi, type HubApi } from './dispatcher/api.js';
import { apiRequestHandler } from './dispatcher/api-requests.js';
import { Dispatcher } from './dispatcher/dispatcher.js';
import type { ReplicaRole } from './dispatcher/replica.js';
import { agentUpgrades } from './hub/agent-upgrades.js';
import { type HubPorts, startHubHttp } from './hub/http.js';
import { hubJobs } from './hub/jobs.js';
import { type HubMqtt, startHubMqtt } from './hub/mqtt.js';
import { remoteAccess, type SessionTimings } from './hub/remote.js';
import { replicaRole } from './hub/replica.js';
import { type HubStores, openHubStores } from './hub/stores.js';
import { type HubTelemetry, openTelemetry } from './hub/telemetry.js';
import { type LiveTelemetry, liveTelemetry } from './hub/telemetry-follow.js';
import type { DispatcherJobs } from './jobs/jobs.js';
import type { JobMethodDeps } from './jobs/methods.js';
import { auditMethods } from './remote/audit-methods.js';
import { telemetryMethods } from './telemetry/methods.js';
import { maxSemiSpaceMiB } from './v8-young-generation.js';

// The hub's schemas, compiled at build time (cli/validator-code.ts): none is compiled at its start.
usePrecompiled(VALIDATORS);

export interface Hub {
  config: HubConfig;
  /** The TLS ports only when the hub has a certificate and key (tlsCertFile, tlsKeyFile). */
  ports: HubPorts;
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
  /** How often jobs past their deadline are expired (default JOB_TICK_MS, 2 s). */
  jobTickMs?: number;
  /** Desired documents the dispatcher has handed to the broker at once (default DESIRED_CHUNK, 200). */
  desiredChunk?: number;
  /** The secrets key as `FLOTILLA_SECRETS_KEY` would give it (base64 of 32 bytes); default: that env var, else the key file. */
  secretsKey?: string;
  /** The protocol versions the hub speaks with agents (default PROTOCOL_VERSIONS; tests play other releases' hubs). */
  protocolVersions?: readonly number[];
  /** The telemetry encodings the hub offers devices (default: every one it decodes; tests play an older hub with []). */
  telemetryEncodings?: readonly string[];
  /** Remote-access timings: how long a device has to answer an open (default 10 s), how often openers are pinged (default 10 s). */
  sessionTimings?: SessionTimings;
}

export async function startHub(overrides: Partial<Record<keyof HubConfig, unknown>> = {}, deps: HubDeps = {}): Promise<Hub> {
  const config = resolveHubConfig(overrides);
  const logger = deps.logger ?? createLogger(config.logLevel, 'flotilla-hub');
  const now = deps.now ?? (() => new Date());
  const closer = new Closer();
  const close = async () => {
    await closer.close();
    logger.info({ component: 'hub' }, 'hub stopped');
  };
  try {
    const stores = await openHubStores(config, { logger, now, secretsKey: deps.secretsKey }, closer);
    const telemetry = await openTelemetry(config, logger, closer, (await stores.devices.presence()).length, stores.postgres);
    const { authenticator, loginDelay } = authentication(config, stores, logger);
    const { protocolVersions, telemetryEncodings } = deps;
    const remote = await remoteAccess(stores, telemetry, new Topics(config.topicRoot), logger, now, closer, config.redis !== undefined);
    const mqttDeps = {
      stores,
      telemetry,
      authenticator,
      loginDelay,
      logger,
      now,
      protocolVersions,
      telemetryEncodings,
      sessions: remote.acl,
    };
    const mqtt = await startHubMqtt(config, mqttDeps, closer);
    const knownDevices = async () => (await stores.devices.presence()).length;
    const live = await liveTelemetry(telemetry, mqtt, config.redis !== undefined, logger, closer, knownDevices);
    const desiredChanged = new Signal((err) => logger.error({ component: 'hub', err }, 're-planning desired state failed'));
    const desiredMayHaveChanged = () => desiredChanged.emit();
    const agents = agentUpgrades(config, stores, { logger, now, desiredMayHaveChanged });
    const jobs = hubJobs(stores, telemetry, { logger, now });
    const api = hubApi(stores, telemetry, live, mqtt, {
      agent: agents.methods,
      jobs: jobs.jobs,
      desiredMayHaveChanged,
      now,
      protocolVersions,
    });
    const replica = await replicaRole(stores, mqtt, config.redis !== undefined, logger, closer);
    const dispatcher = await startDispatcher(
      stores,
      mqtt,
      api,
      { ...deps, replica, agentRollouts: agents.rollouts, jobs: jobs.jobs },
      logger,
      now,
      closer,
    );
    desiredChanged.on(() => dispatcher.scheduleSync());
    jobs.changed.on((change) => dispatcher.jobsChanged(change));
    const endpoint = await remote.startRelay(mqtt, { authenticator, loginDelay }, deps.sessionTimings);
    const ports = await startHubHttp(
      config,
      {
        api,
        stores,
        telemetry,
        live,
        mqtt,
        authenticator,
        loginDelay,
        desiredMayHaveChanged,
        jobCounts: jobs.counts,
        logger,
        remote: { endpoint, registry: remote.registry },
      },
      closer,
    );
    // After the listeners, so it runs before them: sessions end as "the hub stopped", and devices are told while the broker still runs.
    closer.add('remote-access sessions', () => endpoint.close());
    const version = { version: flotillaVersion(), protocolVersions: protocolVersions ?? PROTOCOL_VERSIONS };
    // null: V8's default young generation, which a launcher without the hub's node flag leaves (broker/v8-young-generation.ts).
    const maxSemiSpace = { maxSemiSpaceMiB: maxSemiSpaceMiB() ?? null };
    const replicaName = stores.replicaName !== undefined ? { replica: stores.replicaName } : {};
    logger.info({ component: 'hub', ...version, ...replicaName, dataDir: config.dataDir, ...ports, ...maxSemiSpace }, 'hub ready');
    return { config, ports, hubKey: stores.signingKey.publicKeyPem, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function authentication(config: HubConfig, stores: HubStores, logger: Logger) {
  const authenticator = new Authenticator({
    accounts: stores.accounts,
    credentials: stores.credentials,
    readOnlyUsers: config.readOnlyUsers,
    allowAnonymous: config.allowAnonymous,
  });
  if (config.allowAnonymous) {
    logger.warn(
      { component: 'hub', host: config.host },
      'anonymous clients are allowed (full access without credentials); use --anonymous deny to require them',
    );
  }
  return { authenticator, loginDelay: new LoginDelay() };
}

function hubApi(
  stores: HubStores,
  telemetry: HubTelemetry,
  live: LiveTelemetry,
  mqtt: HubMqtt,
  { agent, jobs, desiredMayHaveChanged, now, protocolVersions }: ApiOptions,
): HubApi {
  const { apps, devices, secrets, rollouts, accounts, credentials, tokens, audit } = stores;
  return createApi({
    apps,
    devices,
    secrets,
    rollouts,
    agent,
    jobs,
    desiredMayHaveChanged,
    telemetry: telemetryMethods({
      store: telemetry.store,
      ingest: telemetry.ingest,
      newestSamples: live.newestSamples,
      devices,
      now: () => now().getTime(),
      linkBytes: (id) => mqtt.linkBytes.get(id),
    }),
    auth: authMethods({ accounts, credentials, tokens, devices, disconnect: mqtt.disconnect }),
    audit: auditMethods({ audit, now: () => now().getTime() }),
    revocations: credentials,
    idClashes: mqtt.clashes,
    protocolVersions,
  });
}

interface ApiOptions {
  agent: AgentMethodDeps;
  jobs: JobMethodDeps;
  desiredMayHaveChanged: () => void;
  now: () => Date;
  protocolVersions: readonly number[] | undefined;
}

async function startDispatcher(
  stores: HubStores,
  mqtt: HubMqtt,
  api: HubApi,
  deps: HubDeps & { replica: ReplicaRole; agentRollouts: AgentRollouts; jobs: DispatcherJobs },
  logger: Logger,
  now: () => Date,
  closer: Closer,
): Promise<Dispatcher> {
  const dispatcher = new Dispatcher({
    bus: mqtt.bus,
    topics: mqtt.topics,
    apps: stores.apps,
    devices: stores.devices,
    secrets: stores.secrets,
    apiRequests: apiRequestHandler({ api, respond: (clientId, response) => mqtt.answers.emit({ clientId, response }), logger }),
    rollouts: stores.rollouts,
    agentRollouts: deps.agentRollouts,
    jobs: deps.jobs,
    logger,
    signingKey: stores.signingKey.privateKey,
    now,
    replica: deps.replica,
    ...(deps.rolloutTickMs !== undefined ? { rolloutTickMs: deps.rolloutTickMs } : {}),
    ...(deps.jobTickMs !== undefined ? { jobTickMs: deps.jobTickMs } : {}),
    ...(deps.desiredChunk !== undefined ? { desiredChunk: deps.desiredChunk } : {}),
  });
  closer.add('dispatcher', () => dispatcher.stop());
  await dispatcher.start();
  return dispatcher;
}
