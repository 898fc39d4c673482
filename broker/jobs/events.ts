/**
 * The events the hub records of jobs on a device's timeline (`flotilla events`,
 * `flotilla describe device`): what an operator reads, with the job's name as
 * the event's `app`. Pure wording; jobs.ts records them.
 *
 * Each event has one source. What happens on the device (job-waiting,
 * job-started, job-retrying, job-succeeded, job-failed, job-timed-out,
 * job-canceled, job-expired) is the device agent's to say (agent/jobs/events.ts):
 * it sends them through its outbox with its own timestamps, so an offline
 * device's every attempt reaches its timeline once it is back. The hub learns
 * the same transitions from the device's state report and records no event of
 * them, or each would show twice. It records only what it decided itself:
 *
 *   job-queued      the job was made and names this device
 *   job-canceled    a cancel or an abort dropped an execution the device never had
 *                   (the message says which, and an abort's failures)
 *   job-expired     the deadline passed and the hub counts the execution expired
 */
import type { StoredExecution, StoredJob } from '../store/jobs.js';

/** What the hub records of a job on a device's timeline (telemetry ingest's hubEvent). */
export interface JobEvent {
  type: HubJobEventType;
  /** The job's name. */
  app: string;
  message: string;
}

export const HUB_JOB_EVENT_TYPES = ['job-queued', 'job-canceled', 'job-expired'] as const;
export type HubJobEventType = (typeof HUB_JOB_EVENT_TYPES)[number];

/** The event of a job made with this device among its executions. */
export function queuedEvent(job: StoredJob): JobEvent {
  const limit = job.spec.spec.rollout?.maxConcurrent;
  const slots = limit !== undefined ? `, at most ${limit} ${limit === 1 ? 'device' : 'devices'} at a time` : '';
  const window = job.spec.spec.window ? ', inside its window' : '';
  return {
    type: 'job-queued',
    app: job.name,
    message: `job ${job.name} queued (execution ${job.uid}): runs once the device has it${slots}${window}; expires if not started by ${job.deadline}`,
  };
}

/** The event of an execution a cancel or an abort dropped before its device had it; the reason says which. */
export function droppedEvent(job: StoredJob, execution: StoredExecution): JobEvent {
  const reason = execution.message ?? job.reason;
  return { type: 'job-canceled', app: job.name, message: `job ${job.name} canceled before it started${reason ? `: ${reason}` : ''}` };
}

/** The event of an execution the hub counts expired at the job's deadline. */
export function expiredEvent(job: StoredJob): JobEvent {
  return {
    type: 'job-expired',
    app: job.name,
    message: `job ${job.name} expired: the device had not started it by its deadline ${job.deadline}`,
  };
}
