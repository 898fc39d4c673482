/**
 * The hub's decisions about jobs, as pure functions over store rows: which
 * executions may start now (admission), when a job's failures reach its abort
 * threshold, and what a device's desired document says of its jobs.
 *
 * Invariants:
 * - An admitted execution holds one of its job's `maxConcurrent` slots until it
 *   is final; without `maxConcurrent` every execution is admitted at once,
 *   online device or not (it runs when its device has it).
 * - With `maxConcurrent`, only executions of devices online now are admitted:
 *   an offline device would hold a slot while others wait. Devices are taken
 *   in id order, so the same fleet admits the same devices.
 * - Nothing is admitted once the job is no longer active, its execution was
 *   asked to stop, or its deadline has passed (the deadline's expiry owns it).
 * - A device's desired jobs are sorted by name, so an unchanged set hashes the
 *   same and republishes nothing.
 */
import {
  abortThreshold,
  type DesiredJob,
  FINAL_JOB_EXECUTION_STATES,
  type JobExecutionState,
  MAX_JOBS_PER_DEVICE,
} from '../../shared/index.js';
import { resolveSecrets, type SecretLookup, SecretRefError } from '../dispatcher/scheduling.js';
import type { StoredExecution, StoredJob } from '../store/jobs.js';

export const isFinal = (state: JobExecutionState): boolean => FINAL_JOB_EXECUTION_STATES.has(state);

/** The devices whose executions of `job` may be admitted now. */
export function admissions(
  job: StoredJob,
  executions: readonly StoredExecution[],
  isOnline: (device: string) => boolean,
  now: Date,
): string[] {
  if (job.phase !== 'active' || Date.parse(job.deadline) <= now.getTime()) return [];
  const waiting = executions
    .filter((e) => !e.admitted && e.state === 'queued' && !e.cancelRequested)
    .map((e) => e.device)
    .sort();
  const limit = job.spec.spec.rollout?.maxConcurrent;
  if (limit === undefined) return waiting;
  const holding = executions.filter((e) => e.admitted && !isFinal(e.state)).length;
  const free = limit - holding;
  return free <= 0 ? [] : waiting.filter(isOnline).slice(0, free);
}

/** A job's failures at or past its abort threshold: how many, the threshold, and the reason its rest is canceled with. */
export interface AbortVerdict {
  failures: number;
  threshold: number;
  reason: string;
}

/** The failed and timed-out executions named in an abort's reason; the rest are counted. */
const NAMED_FAILURES = 5;

/** Undefined while the job goes on: it is not active, has no threshold, or has failed on fewer devices. */
export function abortVerdict(job: StoredJob, executions: readonly StoredExecution[]): AbortVerdict | undefined {
  if (job.phase !== 'active') return undefined;
  const threshold = abortThreshold(job.spec.spec.rollout, executions.length);
  if (threshold === undefined) return undefined;
  const failed = executions.filter((e) => e.state === 'failed' || e.state === 'timed-out');
  if (failed.length < threshold) return undefined;
  const named = failed.slice(0, NAMED_FAILURES).map(describeFailure);
  const more = failed.length > NAMED_FAILURES ? ` and ${failed.length - NAMED_FAILURES} more` : '';
  const devices = failed.length === 1 ? '1 device' : `${failed.length} devices`;
  return {
    failures: failed.length,
    threshold,
    reason: `${devices} failed: ${named.join(', ')}${more} (the job stops at ${threshold})`,
  };
}

function describeFailure(e: StoredExecution): string {
  if (e.state === 'timed-out') return `${e.device} (timed out)`;
  return e.exitCode !== undefined ? `${e.device} (exit code ${e.exitCode})` : `${e.device} (failed)`;
}

/** One job as the device's desired document carries it; throws SecretRefError when a secret it names is unusable. */
export function desiredJob(job: StoredJob, execution: Pick<StoredExecution, 'cancelRequested'>, secret: SecretLookup): DesiredJob {
  const { spec } = job.spec;
  return {
    name: job.name,
    execution: job.uid,
    // A job's containers run once: whatever the spec says, the engine must not start them again.
    containers: resolveSecrets(job.spec, secret).map((container) => ({ ...container, restartPolicy: { name: 'no' } })),
    ...(spec.timeout !== undefined ? { timeout: spec.timeout } : {}),
    ...(spec.retries !== undefined ? { retries: spec.retries } : {}),
    deadline: job.deadline,
    ...(spec.window !== undefined ? { window: spec.window } : {}),
    ...(execution.cancelRequested ? { cancel: true as const } : {}),
  };
}

/** A job left out of a device's document, and why. */
export interface LeftOutJob {
  job: string;
  reason: string;
  /** The secret and field, when an unusable secret is why. */
  secret?: string;
  path?: string;
}

export interface DeviceJobs {
  jobs: DesiredJob[];
  leftOut: LeftOutJob[];
}

/**
 * What a device's desired document says of its jobs: each admitted, unfinished
 * execution (and each one asked to stop), sorted by name. A job whose secret
 * cannot be resolved is left out rather than keeping the device's whole
 * document back (its apps too). Past MAX_JOBS_PER_DEVICE the newest jobs wait
 * outside the document: the agent refuses a longer list.
 */
export function desiredJobsFor(entries: ReadonlyArray<{ job: StoredJob; execution: StoredExecution }>, secret: SecretLookup): DeviceJobs {
  const leftOut: LeftOutJob[] = [];
  const oldestFirst = [...entries].sort((a, b) => compare(a.job.createdAt, b.job.createdAt) || compare(a.job.name, b.job.name));
  const jobs: DesiredJob[] = [];
  for (const { job, execution } of oldestFirst) {
    if (jobs.length >= MAX_JOBS_PER_DEVICE) {
      leftOut.push({ job: job.name, reason: `the device already has ${MAX_JOBS_PER_DEVICE} jobs, the most a desired document holds` });
      continue;
    }
    try {
      jobs.push(desiredJob(job, execution, secret));
    } catch (err) {
      if (!(err instanceof SecretRefError)) throw err;
      leftOut.push({ job: job.name, reason: err.message, secret: err.secret, path: err.path });
    }
  }
  return { jobs: jobs.sort((a, b) => compare(a.name, b.name)), leftOut };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
