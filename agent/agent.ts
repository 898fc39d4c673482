/**
 * The device agent: the Docker runtime and local store, the MQTT link, the
 * image downloads, the reconcile loop and the job runner with the
 * desired-state intake in front of them, telemetry, and what keeps it
 * looking. `startAgent({})` runs on the defaults.
 *
 * Started in named steps (agent/wiring/), each registering what it opened
 * with one Closer, which closes it all in reverse: on `close()`, and on a
 * start that fails half-way; a start that fails for want of room or
 * permission in the data dir also removes the files it created there, and
 * says so in one line (startup-checks.ts). The link is opened before the parts that report
 * through it; the one thing it hands back, a desired document, reaches the
 * intake through a signal.
 */
import type { KeyObject } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Closer } from '../shared/closer.js';
import { type DesiredState, parseHubKey, Topics } from '../shared/index.js';
import { createLogger } from '../shared/logger.js';
import { AGENT_PROTOCOL_VERSION } from '../shared/protocol-version.js';
import { Signal } from '../shared/signal.js';
import { usePrecompiled } from '../shared/validate.js';
import { VALIDATORS } from '../shared/validators/agent.generated.js';
import { type AgentConfig, resolveAgentConfig } from './config.js';
import { hostFacts } from './host.js';
import type { ImagePuller } from './images/image-puller.js';
import type { JobRunner } from './jobs/runner.js';
import type { Link } from './link.js';
import type { Reconciler } from './reconcile/reconciler.js';
import type { ContainerRuntime } from './runtime/runtime.js';
import { checkDataDir, checkEngineSocket, dataDirError } from './startup-checks.js';
import type { LogCollector } from './telemetry/logs/log-collector.js';
import type { UpgraderDeps } from './upgrade/upgrader.js';
import { openAgentUpgrade, type SelfUpgrade } from './wiring/agent-upgrade.js';
import { openDesiredIntake } from './wiring/desired-intake.js';
import { openDevice } from './wiring/device.js';
import { openImages } from './wiring/images.js';
import { startJobs } from './wiring/jobs.js';
import { startReconciler, updateRecords } from './wiring/reconciler.js';
import { openRemoteAccess } from './wiring/remote.js';
import { keepInSync } from './wiring/resync.js';
import { startTelemetry } from './wiring/telemetry.js';
import { openUplink } from './wiring/uplink.js';

// The agent's schemas, compiled at build time (cli/validator-code.ts): none is compiled at its start.
usePrecompiled(VALIDATORS);

export interface Agent {
  config: AgentConfig;
  reconciler: Reconciler;
  /** The log pipeline; `logs.droppedLines` counts every log line dropped since the start. */
  logs: LogCollector;
  /** The MQTT link to the hub, with its outbox. */
  link: Link;
  /** The agent's own upgrade (agent/upgrade/). */
  upgrader: SelfUpgrade;
  /** The jobs of the desired state (agent/jobs/). */
  jobs: JobRunner;
  /** Where every image comes from (agent/images/). */
  images: ImagePuller;
  close(): Promise<void>;
}

export interface AgentDeps {
  logger?: Logger;
  runtime?: ContainerRuntime;
  /** The agent upgrade's prefix, running version, restart… (defaults: FLOTILLA_RELEASES_DIR, this package's version, SIGTERM to itself). */
  upgrade?: Partial<UpgraderDeps>;
}

export async function startAgent(overrides: Partial<Record<keyof AgentConfig, unknown>> = {}, deps: AgentDeps = {}): Promise<Agent> {
  const config = resolveAgentConfig(overrides);
  // Before anything is written or logged: a start that cannot work ends here, in one line.
  if (!deps.runtime) checkEngineSocket();
  const made = !existsSync(config.dataDir);
  checkDataDir(config.dataDir);
  const before = made ? 'made' : dataDirEntries(config.dataDir);
  const logger = (deps.logger ?? createLogger(config.logLevel, 'flotilla-agent')).child({ deviceId: config.deviceId });
  const hubKey = pinnedHubKey(config, logger);
  const closer = new Closer();
  try {
    const device = openDevice(config, deps.runtime, logger, closer);
    // Listened to before startAgent returns, and the link delivers nothing before then (it connects in the background).
    const desiredArrived = new Signal<DesiredState>((err) => logger.error({ component: 'link', err }, 'handling desired state failed'));
    const topics = new Topics(config.topicRoot);
    const uplink = openUplink(config, { store: device.store, topics, desiredArrived, logger }, closer);
    openRemoteAccess(config, { runtime: device.runtime, uplink, logger }, closer);
    const records = updateRecords(device.store);
    const images = openImages(config, { device, uplink, logger, onDownloaded: (image) => records.notePulled(image) }, closer);
    const upgrader = openAgentUpgrade(
      config,
      { uplink, logger, runtime: device.runtime, images: images.puller, ...(deps.upgrade ? { overrides: deps.upgrade } : {}) },
      closer,
    );
    // Before the job runner: an attempt's end waits for its lines to leave, so the collector closes after the runner.
    const logs = startTelemetry(config, device, uplink, logger, closer);
    const jobs = startJobs(
      config,
      { device, uplink, logs, logger, images: images.puller, onPulled: (image) => records.notePulled(image) },
      closer,
    );
    images.alsoWanted(() => jobs.images());
    const reconciler = startReconciler(config, device, uplink, logger, closer, {
      upgrade: upgrader,
      jobs,
      images: images.puller,
      records,
      ...(images.storeDir !== undefined ? { imageStoreDir: images.storeDir } : {}),
    });
    const onAccepted = (desired: DesiredState) => {
      upgrader.setDesired(desired.agent);
      jobs.setDesired(desired.jobs ?? []);
      images.accepted(desired);
    };
    const intake = openDesiredIntake(config, { store: device.store, reconciler, uplink, hubKey, logger, onAccepted }, closer);
    desiredArrived.on((desired) => intake.onDesired(desired));
    keepInSync(config, { runtime: device.runtime, reconciler, logs, jobs, logger }, closer);
    const { agentVersion, nodeVersion, arch } = hostFacts();
    logger.info(
      {
        hubUrl: config.hubUrl,
        dataDir: config.dataDir,
        labels: device.labels,
        agentVersion,
        nodeVersion,
        arch,
        protocol: AGENT_PROTOCOL_VERSION,
      },
      'agent started',
    );
    const close = async () => {
      await closer.close();
      logger.info('agent stopped');
    };
    return { config, reconciler, logs, link: uplink.link, upgrader, jobs, images: images.puller, close };
  } catch (err) {
    await closer.close();
    const problem = dataDirError(err, config.dataDir);
    if (!problem) throw err;
    removeCreated(config.dataDir, before);
    throw problem;
  }
}

/** What the data dir holds before this start; undefined if it cannot be listed (then nothing is removed). */
function dataDirEntries(dataDir: string): ReadonlySet<string> | undefined {
  try {
    return new Set(readdirSync(dataDir));
  } catch {
    return undefined;
  }
}

/**
 * Removes what a failed start wrote (a 0-byte agent.db on a full disk, say):
 * the data dir itself if this start made it, else the names that were not there.
 */
function removeCreated(dataDir: string, before: ReadonlySet<string> | 'made' | undefined): void {
  try {
    if (before === 'made') rmSync(dataDir, { recursive: true, force: true });
    else if (before !== undefined) {
      for (const name of readdirSync(dataDir)) if (!before.has(name)) rmSync(join(dataDir, name), { recursive: true, force: true });
    }
  } catch {
    // Best effort: the error being reported is the one that matters.
  }
}

/** Parsed before anything is opened: an unusable pinned key is a configuration error, not a running agent that trusts anyone. */
function pinnedHubKey(config: AgentConfig, logger: Logger): KeyObject | undefined {
  if (config.hubKey === undefined) {
    logger.warn(
      'no hub key pinned (--hub-key, or `flotilla agent register`): desired state is applied without verifying that the hub signed it',
    );
    return undefined;
  }
  try {
    return parseHubKey(config.hubKey);
  } catch (err) {
    throw new Error(`invalid agent configuration:\nhubKey: ${(err as Error).message}`);
  }
}
