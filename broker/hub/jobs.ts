/**
 * The hub's jobs (broker/jobs/): made and steered through the API, reported by devices, admitted
 * and expired by the dispatcher. What they change for desired documents goes out through a
 * signal, since the dispatcher that plans it is started after the API that changes it.
 */
import type { Logger } from 'pino';
import { Signal } from '../../shared/signal.js';
import { Jobs, type JobsChange } from '../jobs/jobs.js';
import { phaseCounts } from '../jobs/views.js';
import type { JobFleetCounts } from '../telemetry/prometheus.js';
import type { HubStores } from './stores.js';
import type { HubTelemetry } from './telemetry.js';

export interface HubJobs {
  jobs: Jobs;
  /** Each change of desired documents jobs make; the dispatcher plans it. */
  changed: Signal<JobsChange>;
  /** What Prometheus reads at a scrape. */
  counts(): Promise<JobFleetCounts>;
}

export function hubJobs(
  stores: Pick<HubStores, 'jobs' | 'devices' | 'secrets'>,
  telemetry: Pick<HubTelemetry, 'ingest'>,
  deps: { logger: Logger; now: () => Date },
): HubJobs {
  const changed = new Signal<JobsChange>((err) => deps.logger.error({ component: 'hub', err }, 'planning a job change failed'));
  const jobs = new Jobs({
    store: stores.jobs,
    devices: stores.devices,
    secrets: stores.secrets,
    event: (device, event) => telemetry.ingest.hubEvent(device, event),
    changed: (change) => changed.emit(change),
    logger: deps.logger,
    now: deps.now,
  });
  return {
    jobs,
    changed,
    counts: async () => ({ executions: await stores.jobs.countByState(), jobs: phaseCounts(await stores.jobs.list()) }),
  };
}
