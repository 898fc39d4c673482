/**
 * Validating a job spec: the schema, then what it cannot express. A job's
 * containers follow an app's rules (containerIssues), and run to completion:
 * a restart policy other than `no` would run them again, and a health check
 * judges a service, not a task. Every issue names its field, so one bad spec
 * is one error listing them all, and nothing is made.
 */
import { containerIssues } from './app-spec.js';
import { type JobSpec, JobSpec as JobSpecSchema } from './schemas/job.js';
import { parseDuration } from './schemas/units.js';
import { windowIssues } from './update-window.js';
import { type Validated, type ValidationIssue, validate } from './validate.js';

export const DEFAULT_JOB_TIMEOUT = '1h';
export const DEFAULT_JOB_DEADLINE = '7d';
export const DEFAULT_RETRY_BACKOFF = '10s';
/** The longest wait between two attempts, however many came before. */
export const MAX_RETRY_BACKOFF_MS = 3_600_000;

const TARGETS = 'scheduling.selectors (labels a device must have; {} selects every device) or scheduling.devices (ids)';

export function validateJobSpec(value: unknown, now = new Date()): Validated<JobSpec> {
  const result = validate(JobSpecSchema, value);
  if (!result.ok) return { ok: false, issues: result.issues.map(targetIssue) };
  const issues = jobIssues(result.value, now);
  return issues.length === 0 ? result : { ok: false, issues };
}

/** A job without a target says what a target is, rather than how many properties an object lacks. */
function targetIssue(issue: ValidationIssue): ValidationIssue {
  if (issue.path === 'scheduling' && /fewer than 1 properties/.test(issue.message))
    return { path: 'scheduling', message: `must name the devices: ${TARGETS}` };
  if (issue.path === 'scheduling' && issue.message === 'is required')
    return { path: 'scheduling', message: `is required: a job names its devices with ${TARGETS}` };
  return issue;
}

function jobIssues(job: JobSpec, now: Date): ValidationIssue[] {
  const { spec } = job;
  const issues = containerIssues(spec.containers);
  spec.containers.forEach((container, i) => {
    const at = `spec.containers[${i}]`;
    if (container.restartPolicy && container.restartPolicy.name !== 'no') {
      issues.push({
        path: `${at}.restartPolicy`,
        message: 'a job\'s containers run once: the only restart policy is "no" (use spec.retries to try again)',
      });
    }
    if (container.healthcheck) {
      issues.push({ path: `${at}.healthcheck`, message: 'a job runs to completion: its exit code decides, not a health check' });
    }
  });
  if (spec.timeout !== undefined && parseDuration(spec.timeout) <= 0) {
    issues.push({ path: 'spec.timeout', message: 'must be longer than 0' });
  }
  if (spec.retries?.backoff !== undefined && parseDuration(spec.retries.backoff) > MAX_RETRY_BACKOFF_MS) {
    issues.push({ path: 'spec.retries.backoff', message: 'must be at most 1h' });
  }
  if (spec.deadline !== undefined) {
    const deadline = jobDeadline(spec.deadline, now);
    if (deadline.getTime() <= now.getTime()) {
      issues.push({ path: 'spec.deadline', message: `must be in the future (it is ${deadline.toISOString()})` });
    }
  }
  const { rollout } = spec;
  if (rollout?.abortAfterFailures !== undefined && rollout.abortAfterFailurePercent !== undefined) {
    issues.push({ path: 'spec.rollout', message: 'has both "abortAfterFailures" and "abortAfterFailurePercent": give one' });
  }
  if (spec.window) issues.push(...windowIssues(spec.window, 'spec.window'));
  return issues;
}

/** The instant a deadline names: a duration counts from `createdAt`. */
export function jobDeadline(deadline: string | undefined, createdAt: Date): Date {
  const text = deadline ?? DEFAULT_JOB_DEADLINE;
  return /^[0-9]/.test(text) && !text.includes('T') ? new Date(createdAt.getTime() + parseDuration(text)) : new Date(text);
}

/** The wait before attempt `attempt` (2, 3, …): the backoff doubled per attempt after the second, capped at 1h. */
export function retryDelayMs(backoff: string | undefined, attempt: number): number {
  const base = parseDuration(backoff ?? DEFAULT_RETRY_BACKOFF);
  return Math.min(MAX_RETRY_BACKOFF_MS, base * 2 ** Math.max(0, attempt - 2));
}

/** The failures (failed or timed-out devices) at which a job's rest is canceled, for a job of `devices`; undefined: never. */
export function abortThreshold(rollout: JobSpec['spec']['rollout'], devices: number): number | undefined {
  if (rollout?.abortAfterFailures !== undefined) return rollout.abortAfterFailures;
  if (rollout?.abortAfterFailurePercent !== undefined) {
    return Math.max(1, Math.ceil((devices * Number.parseInt(rollout.abortAfterFailurePercent, 10)) / 100));
  }
  return undefined;
}
