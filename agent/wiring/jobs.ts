/**
 * Jobs (agent/jobs/): the runner, its record file beside agent.db, and its
 * events out through the uplink. It follows the `jobs` of each accepted
 * desired document (agent.ts hands them on); the state report shows its
 * executions (wiring/reconciler.ts). An attempt's lines go out through the
 * log collector before its end is reported (wiring/telemetry.ts starts it first).
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AgentConfig } from '../config.js';
import type { ImageSource } from '../images/image-source.js';
import { JobStore } from '../jobs/job-store.js';
import { type JobLogs, JobRunner, jobRuntimeOf } from '../jobs/runner.js';
import type { Device } from './device.js';
import type { Uplink } from './uplink.js';

export interface JobsWiring {
  device: Device;
  uplink: Uplink;
  /** The log collector. */
  logs: JobLogs;
  logger: Logger;
  /** An image the runner pulled: the app reconciler's records, so its image collection removes it once unused. */
  onPulled?: (image: string) => void;
  /** Where the runner's images come from (the agent's image puller). */
  images?: ImageSource;
}

export function startJobs(config: AgentConfig, { device, uplink, logs, logger, onPulled, images }: JobsWiring, closer: Closer): JobRunner {
  const store = new JobStore(config.dataDir, logger.child({ component: 'jobs' }));
  // Closed after the runner (the closer runs in reverse): a move finishing during the stop still writes its record.
  closer.add('jobs.db', () => store.close());
  const runner = new JobRunner({
    runtime: jobRuntimeOf(device.runtime),
    store,
    deviceId: config.deviceId,
    namePrefix: config.containerNamePrefix,
    stopTimeoutSeconds: config.stopTimeoutSeconds,
    logger,
    event: (event) => uplink.event(event),
    logs,
    ...(onPulled ? { onPulled } : {}),
    ...(images ? { images } : {}),
  });
  closer.add('job runner', () => runner.close());
  return runner;
}
