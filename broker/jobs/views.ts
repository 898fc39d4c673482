/**
 * What the API returns for jobs (shared/api/results.ts JobSummary, JobDetail),
 * built from store rows by pure functions: the same shapes over HTTP and MQTT.
 *
 * A queued execution always says why it waits. The device's own message
 * (its window, a pull it retries, a retry's backoff) is kept; while the device
 * has said nothing of it, the hub says what it knows: no slot yet, the device
 * offline, or sent and not yet reported.
 */
import {
  JOB_EXECUTION_STATES,
  JOB_PHASES,
  type JobCounts,
  type JobDetail,
  type JobExecutionView,
  type JobPhase,
  type JobSummary,
} from '../../shared/index.js';
import type { DevicePresence } from '../store/devices.js';
import type { StoredExecution, StoredJob } from '../store/jobs.js';

/** A device's presence by id (undefined: the hub has no row for it, as for a device that never connected). */
export type PresenceOf = (device: string) => Pick<DevicePresence, 'online' | 'lastSeen'> | undefined;

/** Every state, 0 where no execution is in it, and the total. */
export function jobCounts(executions: readonly StoredExecution[]): JobCounts {
  const counts = Object.fromEntries(JOB_EXECUTION_STATES.map((state) => [state, 0])) as JobCounts;
  for (const e of executions) counts[e.state]++;
  counts.total = executions.length;
  return counts;
}

export function jobSummary(job: StoredJob, executions: readonly StoredExecution[]): JobSummary {
  return {
    name: job.name,
    phase: job.phase,
    counts: jobCounts(executions),
    createdAt: job.createdAt,
    deadline: job.deadline,
    ...(job.reason !== undefined ? { reason: job.reason } : {}),
  };
}

export function jobDetail(job: StoredJob, executions: readonly StoredExecution[], presence: PresenceOf): JobDetail {
  return {
    ...jobSummary(job, executions),
    spec: job.spec,
    executions: [...executions]
      .sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0))
      .map((e) => executionView(e, hubMessage(job, e, presence))),
  };
}

/** Whether a view of these executions says something the hub must read presence for (a queued one the device said nothing of). */
export function needsPresence(executions: readonly StoredExecution[]): boolean {
  return executions.some((e) => e.state === 'queued' && e.message === undefined);
}

/**
 * Why a queued execution waits, when its device has not said: not admitted under
 * maxConcurrent, its device offline, or in its document and not yet reported.
 * Undefined for any other execution (the device's message, or none, stands).
 * A job without maxConcurrent admits every execution right after it is made, so
 * there an execution not yet admitted waits only for its device, as an admitted one does.
 */
export function hubMessage(job: StoredJob, e: StoredExecution, presence: PresenceOf): string | undefined {
  if (e.state !== 'queued' || e.message !== undefined) return undefined;
  const { online, lastSeen } = presence(e.device) ?? { online: false, lastSeen: null };
  const back = lastSeen === null ? 'to connect (it never has)' : `to come back online (offline since ${lastSeen})`;
  const limit = job.spec.spec.rollout?.maxConcurrent;
  if (!e.admitted && limit !== undefined) {
    // Only an online device is admitted (plan.ts admissions): an offline one waits for both.
    const slot = `waiting for a slot: at most ${limit} ${limit === 1 ? 'device' : 'devices'} at a time`;
    return online ? slot : `${slot}, and for the device ${back}`;
  }
  if (online) return e.cancelRequested ? 'cancel sent to the device' : 'sent to the device';
  return e.cancelRequested ? `cancel waits for the device ${back}` : `waiting for the device ${back}`;
}

/**
 * What an operator sees of one execution: the store's bookkeeping (admitted, cancel asked) stays
 * inside the hub. `waiting` (hubMessage) stands in for a message the device has not given.
 */
export function executionView(e: StoredExecution, waiting?: string): JobExecutionView {
  const message = e.message ?? waiting;
  return {
    device: e.device,
    state: e.state,
    attempt: e.attempt,
    updatedAt: e.updatedAt,
    ...(e.startedAt !== undefined ? { startedAt: e.startedAt } : {}),
    ...(e.finishedAt !== undefined ? { finishedAt: e.finishedAt } : {}),
    ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
    ...(e.container !== undefined ? { container: e.container } : {}),
    ...(message !== undefined ? { message } : {}),
    ...(e.nextAttemptAt !== undefined ? { nextAttemptAt: e.nextAttemptAt } : {}),
    ...(e.output !== undefined ? { output: e.output } : {}),
  };
}

/** Jobs per phase, every phase present (Prometheus `flotilla_jobs{phase}`). */
export function phaseCounts(jobs: readonly Pick<StoredJob, 'phase'>[]): Record<JobPhase, number> {
  const counts = Object.fromEntries(JOB_PHASES.map((phase) => [phase, 0])) as Record<JobPhase, number>;
  for (const job of jobs) counts[job.phase]++;
  return counts;
}
