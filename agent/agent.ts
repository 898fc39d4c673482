/**
 * The device agent: wires the MQTT link, the local store, the Docker runtime
 * and the reconcile loop. `startAgent({})` runs on the defaults.
 */
import { join } from 'node:path';
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { type DesiredState, type DeviceEvent, type DeviceState, parseHubKey, Topics } from '../shared/index.js';
import { createLogger } from '../shared/logger.js';
import { type AgentConfig, resolveAgentConfig } from './config.js';
import { checkDesired, checkRestored } from './desired-guard.js';
import { dockerArch, hostFacts } from './host.js';
import { Link } from './link.js';
import { LocalStore } from './local-store.js';
import { IN_MEMORY } from './outbox/outbox-file.js';
import { type ObservedState, Reconciler } from './reconcile/reconciler.js';
import { Records } from './reconcile/records.js';
import { RejectionEvents } from './rejection-events.js';
import { DockerRuntime } from './runtime/docker-runtime.js';
import type { ContainerRuntime } from './runtime/runtime.js';
import { LogCollector } from './telemetry/logs/log-collector.js';
import { MetricsCollector } from './telemetry/metrics/collector.js';
import { TelemetrySeq } from './telemetry/seq.js';

export interface Agent {
  config: AgentConfig;
  reconciler: Reconciler;
  /** The log pipeline; `logs.droppedLines` counts every log line dropped since the start. */
  logs: LogCollector;
  /** The MQTT link to the hub, with its outbox. */
  link: Link;
  close(): Promise<void>;
}

export interface AgentDeps {
  logger?: Logger;
  runtime?: ContainerRuntime;
}

export async function startAgent(overrides: Partial<Record<keyof AgentConfig, unknown>> = {}, deps: AgentDeps = {}): Promise<Agent> {
  const config = resolveAgentConfig(overrides);
  const logger = (deps.logger ?? createLogger(config.logLevel, 'flotilla-agent')).child({ deviceId: config.deviceId });
  // Parsed before anything is opened: an unusable pinned key is a configuration error, not a running agent that trusts anyone.
  const hubKey = config.hubKey === undefined ? undefined : hubKeyOf(config.hubKey);
  if (!hubKey) {
    logger.warn(
      'no hub key pinned (--hub-key, or `flotilla agent register`): desired state is applied without verifying that the hub signed it',
    );
  }
  const runtime =
    deps.runtime ??
    new DockerRuntime(new Dockerode(), logger.child({ component: 'docker' }), {
      // Only this device's containers: another agent on the same engine is not ours to reconcile.
      deviceId: config.deviceId,
    });
  const store = new LocalStore(config.dataDir);
  const topics = new Topics(config.topicRoot);
  // One seq source for log batches and metric samples (events keep their own persisted seq).
  const telemetrySeq = new TelemetrySeq(store.nextBoot());
  // `arch` lets specs select devices by CPU architecture; an explicit label wins.
  const labels = { arch: dockerArch(), ...config.labels };

  let dockerVersion: string | undefined;
  let link: Link | undefined;
  const report = (observed: ObservedState) => {
    const state: DeviceState = {
      deviceId: config.deviceId,
      observedRevision: observed.observedRevision,
      reportedAt: new Date().toISOString(),
      host: hostFacts(dockerVersion),
      labels,
      apps: observed.apps,
      ...(observed.runtimeError ? { runtimeError: observed.runtimeError } : {}),
    };
    link?.publishState(state);
  };

  const publishEvent = (event: Omit<DeviceEvent, 'seq' | 'ts'>) =>
    link?.publishEvent({ seq: store.nextEventSeq(), ts: new Date().toISOString(), ...event });

  const reconciler = new Reconciler({
    runtime,
    records: new Records(store.loadRecords(), (records) => store.saveRecords(records)),
    deviceId: config.deviceId,
    namePrefix: config.containerNamePrefix,
    logger,
    onState: report,
    stopTimeoutSeconds: config.stopTimeoutSeconds,
    diskReserveBytes: config.diskReserveBytes,
    onEvent: (event) => publishEvent(event),
  });

  // The document the agent acts on: verified (with a pinned key), the newest it accepted.
  let current: DesiredState | undefined;
  const restored = store.loadDesired();
  if (restored.problem) logger.warn({ reason: restored.problem }, 'ignoring unreadable persisted desired state');
  const restoredProblem = restored.desired && checkRestored(restored.desired, hubKey);
  if (restored.desired && restored.desired.deviceId !== config.deviceId) {
    logger.warn({ persistedFor: restored.desired.deviceId }, 'ignoring persisted desired state of another device id (data dir reused?)');
  } else if (restored.desired && restoredProblem) {
    // Nothing is removed until a desired state is known: the running apps stay as they are until the hub's arrives.
    logger.warn(
      { revision: restored.desired.revision, reason: restoredProblem },
      'ignoring persisted desired state that does not verify with the pinned hub key (altered on disk, or saved before the key was pinned)',
    );
  } else if (restored.desired) {
    logger.info({ revision: restored.desired.revision }, 'restored desired state from disk');
    reconciler.setDesired(restored.desired);
    current = restored.desired;
  }

  const rejections = new RejectionEvents({
    emit: (message) => publishEvent({ type: 'desired-rejected', message }),
    logger: logger.child({ component: 'desired' }),
    intervalMs: config.rejectionEventIntervalMs,
  });
  const onDesired = (desired: DesiredState) => {
    const verdict = checkDesired(desired, current, hubKey, config.deviceId);
    // Refused: not handed to the reconciler, so the running containers stay exactly as they are.
    if (verdict.action === 'refuse') return rejections.refused(verdict.reason, verdict.message);
    if (verdict.action === 'ignore' || !reconciler.setDesired(desired)) {
      logger.debug({ revision: desired.revision, current: reconciler.desiredRevision }, 'ignoring stale desired state');
      return;
    }
    current = desired;
    store.saveDesired(desired);
    logger.info({ revision: desired.revision, apps: desired.apps.map((a) => `${a.name}@${a.revision}`) }, 'new desired state');
  };
  link = new Link({
    hubUrl: config.hubUrl,
    deviceId: config.deviceId,
    topics,
    logger,
    onDesired,
    onForeignDesired: onDesired,
    stateIntervalMs: config.stateIntervalMs,
    keepaliveSeconds: config.keepaliveSeconds,
    uplinkBytesPerSecond: config.uplinkBytesPerSecond,
    outbox: {
      path: outboxPath(config),
      maxBytes: config.outboxMaxBytes,
      ttlMs: config.outboxTtlMs,
    },
    onOutboxDrops: (summary) => publishEvent({ type: 'outbox-dropped', message: summary }),
    ...(config.secret !== undefined ? { secret: config.secret } : {}),
    tls: {
      ...(config.ca !== undefined ? { ca: config.ca } : {}),
      ...(config.tlsCert !== undefined ? { cert: config.tlsCert } : {}),
      ...(config.tlsKey !== undefined ? { key: config.tlsKey } : {}),
    },
  });

  const logs = new LogCollector({
    runtime,
    sink: link,
    nextSeq: () => telemetrySeq.next(),
    logger: logger.child({ component: 'logs' }),
    rateLinesPerSecond: config.logRateLinesPerSecond,
    bufferBytes: config.logBufferBytes,
    lineMaxBytes: config.logLineMaxBytes,
    batchBytes: config.logBatchBytes,
    batchMs: config.logBatchMs,
  });

  runtime
    .info()
    .then((info) => {
      dockerVersion = info.version;
    })
    .catch((err: Error) => logger.warn({ err: err.message }, 'container runtime not reachable yet'));

  // Docker events make the agent notice a crash or a manual `docker rm` at
  // once; the periodic resync catches anything the event stream missed.
  let stopWatching: () => void = () => undefined;
  let rewatchTimer: NodeJS.Timeout | undefined;
  const watch = () => {
    stopWatching = runtime.watch(
      () => {
        reconciler.trigger();
        logs.refresh();
      },
      (err) => {
        logger.warn({ err: err.message }, 'Docker event stream ended; re-subscribing');
        rewatchTimer = setTimeout(watch, 2_000);
      },
    );
  };
  watch();
  const resync = setInterval(() => {
    reconciler.trigger();
    logs.refresh();
  }, config.resyncIntervalMs);
  const metrics = new MetricsCollector({
    runtime,
    intervalMs: config.metricsIntervalMs,
    publish: (sample) => link?.publishMetrics(sample) ?? false,
    nextSeq: () => telemetrySeq.next(),
    logger: logger.child({ component: 'metrics' }),
    logLinesDropped: () => logs.droppedLines,
    outbox: () => link?.outboxStats ?? { messages: 0, bytes: 0, dropped: 0 },
  });
  metrics.start();
  reconciler.trigger();
  logs.start();
  logger.info({ hubUrl: config.hubUrl, dataDir: config.dataDir, labels }, 'agent started');

  return {
    config,
    reconciler,
    logs,
    link,
    async close() {
      clearInterval(resync);
      clearTimeout(rewatchTimer);
      await metrics.stop();
      stopWatching();
      reconciler.close();
      rejections.close();
      // Let an aborted tick finish before the store it writes to is closed.
      await Promise.race([reconciler.idle(), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
      logs.close();
      await link?.close();
      store.close();
    },
  };
}

function hubKeyOf(pem: string) {
  try {
    return parseHubKey(pem);
  } catch (err) {
    throw new Error(`invalid agent configuration:\nhubKey: ${(err as Error).message}`);
  }
}

/** `memory` keeps the outbox in RAM; the default is a file beside the agent's own. */
function outboxPath(config: AgentConfig): string {
  if (config.outboxPath === 'memory') return IN_MEMORY;
  return config.outboxPath ?? join(config.dataDir, 'outbox.db');
}
