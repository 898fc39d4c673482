/**
 * The reconcile loop, its records in the local store, and the state reports
 * it makes through the uplink: the apps it observes, with the agent's own
 * upgrade, the job executions and the image downloads, each reported again
 * when it changes (a download's progress at most every few seconds: the
 * puller throttles its signal).
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AgentUpgradeReport, DeviceState, DownloadTotals, ImageDownload, JobExecutionReport } from '../../shared/index.js';
import type { Signal } from '../../shared/signal.js';
import type { AgentConfig } from '../config.js';
import { hostFacts } from '../host.js';
import type { ImageSource } from '../images/image-source.js';
import type { LocalStore } from '../local-store.js';
import { type ObservedState, Reconciler } from '../reconcile/reconciler.js';
import { Records } from '../reconcile/records.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import type { Device } from './device.js';
import type { Uplink } from './uplink.js';

/** How long close() lets an aborted tick finish before the store it writes to is closed anyway. */
const IDLE_WAIT_MS = 5_000;

/** The agent's own upgrade as the state report shows it (wiring/agent-upgrade.ts). */
export interface UpgradeReporting {
  readonly report: AgentUpgradeReport | undefined;
  readonly changed: Signal<void>;
}

/** The job executions as the state report shows them (wiring/jobs.ts). */
export interface JobReporting {
  reports(): JobExecutionReport[];
  readonly changed: Signal<void>;
  /** Images a job still needs: the app reconciler's image collection leaves them. */
  images(): ReadonlySet<string>;
}

/** The image downloads as the state report shows them (wiring/images.ts), and where the reconciler's pulls go. */
export interface ImageReporting extends ImageSource {
  reports(): ImageDownload[];
  /** Undefined: the report carries no `downloads` (the hub then sends no prefetch). */
  totals(): DownloadTotals | undefined;
  readonly changed: Signal<void>;
}

export interface ReportedParts {
  upgrade?: UpgradeReporting;
  jobs?: JobReporting;
  images?: ImageReporting;
  /** The agent's image store, when it downloads images itself: the disk check counts it. */
  imageStoreDir?: string;
  /** The update records (updateRecords), when another part notes its pulls there too. */
  records?: Records;
}

/** What the agent remembers about app updates, in the local store; the job runner notes its pulls there too. */
export function updateRecords(store: LocalStore): Records {
  return new Records(store.loadRecords(), (records) => store.saveRecords(records));
}

export function startReconciler(
  config: AgentConfig,
  device: Device,
  uplink: Uplink,
  logger: Logger,
  closer: Closer,
  { upgrade, jobs, images, imageStoreDir, records = updateRecords(device.store) }: ReportedParts = {},
): Reconciler {
  const { runtime, labels } = device;
  const dockerVersion = engineVersion(runtime, logger);
  // The last observation, so a change in the agent's upgrade or a job is reported without observing the engine again.
  let lastObserved: ObservedState | undefined;
  const report = (observed: ObservedState) =>
    uplink.link.publishState(
      stateReport(config.deviceId, labels, observed, dockerVersion(), {
        agentUpgrade: upgrade?.report,
        jobs: jobs?.reports(),
        images: images?.reports(),
        downloads: images?.totals(),
      }),
    );
  const reconciler = new Reconciler({
    runtime,
    ...(images ? { images } : {}),
    records,
    ...(jobs ? { imagesInUse: () => jobs.images() } : {}),
    deviceId: config.deviceId,
    namePrefix: config.containerNamePrefix,
    logger,
    onState: (observed) => {
      lastObserved = observed;
      report(observed);
    },
    stopTimeoutSeconds: config.stopTimeoutSeconds,
    diskReserveBytes: config.diskReserveBytes,
    ...(imageStoreDir !== undefined ? { imageStoreDir } : {}),
    onEvent: (event) => uplink.event(event),
  });
  const reportAgain = () => {
    if (lastObserved) report(lastObserved);
  };
  upgrade?.changed.on(reportAgain);
  jobs?.changed.on(reportAgain);
  // The apps' phase messages say how their downloads go: the reconciler words them again.
  images?.changed.on(() => reconciler.republish());
  closer.add('reconciler', async () => {
    reconciler.close();
    await Promise.race([reconciler.idle(), new Promise((resolve) => setTimeout(resolve, IDLE_WAIT_MS).unref())]);
  });
  return reconciler;
}

interface ReportParts {
  agentUpgrade: AgentUpgradeReport | undefined;
  jobs: JobExecutionReport[] | undefined;
  images: ImageDownload[] | undefined;
  downloads: DownloadTotals | undefined;
}

function stateReport(
  deviceId: string,
  labels: DeviceState['labels'],
  observed: ObservedState,
  dockerVersion: string | undefined,
  { agentUpgrade, jobs, images, downloads }: ReportParts,
): DeviceState {
  return {
    deviceId,
    observedRevision: observed.observedRevision,
    reportedAt: new Date().toISOString(),
    host: hostFacts(dockerVersion),
    labels,
    apps: observed.apps,
    ...(observed.runtimeError ? { runtimeError: observed.runtimeError } : {}),
    ...(agentUpgrade ? { agentUpgrade } : {}),
    ...(jobs && jobs.length > 0 ? { jobs } : {}),
    ...(images && images.length > 0 ? { images } : {}),
    // Always, even all zero: it tells the hub this agent can prefetch.
    ...(downloads ? { downloads } : {}),
  };
}

/** The engine's version for state reports, once it has answered; reports before that go without it. */
function engineVersion(runtime: ContainerRuntime, logger: Logger): () => string | undefined {
  let version: string | undefined;
  runtime
    .info()
    .then((info) => {
      version = info.version;
    })
    .catch((err: Error) => logger.warn({ err: err.message }, 'container runtime not reachable yet'));
  return () => version;
}
