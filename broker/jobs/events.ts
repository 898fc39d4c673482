/**
 * The events the hub records on a device's timeline for its jobs (`flotilla
 * events`, `flotilla describe device`), one per change of an execution's
 * state: what an operator reads, with the job's name as the event's `app`.
 * Pure wording; jobs.ts records them.
 *
 *   job-queued      the job was made and names this device
 *   job-running     an attempt started
 *   job-retrying    an attempt ended and another waits for its backoff
 *   job-succeeded   every container exited 0
 *   job-failed      a container exited non-zero (or could not start)
 *   job-timed-out   killed at the job's timeout
 *   job-canceled    canceled by an operator, by an abort, or on the device
 *   job-expired     the deadline passed before it started
 */
import { DEFAULT_JOB_TIMEOUT, type JobExecutionState } from '../../shared/index.js';
import type { ExecutionTransition, StoredExecution, StoredJob } from '../store/jobs.js';

/** What the hub records of a job on a device's timeline (telemetry ingest's hubEvent). */
export interface JobEvent {
  type: string;
  /** The job's name. */
  app: string;
  message: string;
}

export const JOB_EVENT_TYPES: Record<JobExecutionState, string> = {
  queued: 'job-queued',
  running: 'job-running',
  succeeded: 'job-succeeded',
  failed: 'job-failed',
  'timed-out': 'job-timed-out',
  canceled: 'job-canceled',
  expired: 'job-expired',
};

export const JOB_RETRYING = 'job-retrying';

/** The event of a job made with this device among its executions. */
export function queuedEvent(job: StoredJob): JobEvent {
  const limit = job.spec.spec.rollout?.maxConcurrent;
  const slots = limit !== undefined ? `, at most ${limit} ${limit === 1 ? 'device' : 'devices'} at a time` : '';
  const window = job.spec.spec.window ? ', inside its window' : '';
  return {
    type: JOB_EVENT_TYPES.queued,
    app: job.name,
    message: `job ${job.name} queued (execution ${job.uid}): runs once the device has it${slots}${window}; expires if not started by ${job.deadline}`,
  };
}

/**
 * The event of one transition. `by` says who made it: the device, in its
 * report, or the hub (a cancel or an abort dropping a queued execution, the
 * deadline expiring one).
 */
export function transitionEvent(job: StoredJob, transition: ExecutionTransition, by: 'device' | 'hub'): JobEvent {
  const { execution: e, from, to } = transition;
  const name = job.name;
  const attempt = attemptOf(job, e);
  const said = e.message ? `: ${e.message}` : '';
  const event = (type: string, message: string): JobEvent => ({ type, app: name, message });
  switch (to) {
    case 'queued':
      return event(
        JOB_RETRYING,
        `job ${name} waits to try again${e.nextAttemptAt ? ` at ${e.nextAttemptAt}` : ''} (${attempt} ended${said})`,
      );
    case 'running':
      return event(JOB_EVENT_TYPES.running, `job ${name} running (${attempt})`);
    case 'succeeded':
      return event(JOB_EVENT_TYPES.succeeded, `job ${name} succeeded (${attempt})${lateNote(from)}`);
    case 'failed':
      return event(JOB_EVENT_TYPES.failed, `job ${name} failed (${attempt}): ${howItFailed(e)}${lateNote(from)}`);
    case 'timed-out': {
      const timeout = job.spec.spec.timeout ?? DEFAULT_JOB_TIMEOUT;
      return event(JOB_EVENT_TYPES['timed-out'], `job ${name} timed out after ${timeout} (${attempt}) and was killed${lateNote(from)}`);
    }
    case 'canceled': {
      if (by === 'device') return event(JOB_EVENT_TYPES.canceled, `job ${name} canceled on the device (${attempt})${said}`);
      const reason = e.message ?? job.reason;
      return event(JOB_EVENT_TYPES.canceled, `job ${name} canceled before it started${reason ? `: ${reason}` : ''}`);
    }
    case 'expired':
      return event(JOB_EVENT_TYPES.expired, `job ${name} expired: the device had not started it by its deadline ${job.deadline}`);
  }
}

/** The exit code and container, and the device's message unless it already says the code (the agent's does). */
function howItFailed(e: StoredExecution): string {
  if (e.exitCode === undefined) return e.message || 'no exit code reported';
  const code = `${e.container !== undefined ? `container ${e.container} ` : ''}exited with code ${e.exitCode}`;
  if (!e.message) return code;
  return e.message.includes(`code ${e.exitCode}`) ? e.message : `${code}: ${e.message}`;
}

/** `attempt 2 of 4` with retries, `attempt 1` without. */
function attemptOf(job: StoredJob, e: StoredExecution): string {
  const limit = job.spec.spec.retries?.limit;
  const attempt = Math.max(1, e.attempt);
  return limit !== undefined && limit > 0 ? `attempt ${attempt} of ${limit + 1}` : `attempt ${attempt}`;
}

/** A device's final report after the hub had counted the execution expired. */
function lateNote(from: JobExecutionState): string {
  return from === 'expired' ? '; reported after its deadline had counted it expired' : '';
}
