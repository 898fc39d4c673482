/**
 * Validating a job spec: the schema, then what it cannot express. A job's
 * containers follow an app's rules (containerIssues), and run to completion:
 * a restart policy other than `no` would run them again, and a health check
 * judges a service, not a task. Every issue names its field, so one bad spec
 * is one error listing them all, and nothing is made.
 */
import { containerIssues } from './app-spec.js';
import { type JobSpec, JobSpec as JobSpecSchema } from './schemas/job.js';
import { DURATION_PATTERN, parseDuration } from './schemas/units.js';
import { describeWindow, isTimeZone, windowIssues, windowState } from './update-window.js';
import { type Validated, type ValidationIssue, validate } from './validate.js';

export const DEFAULT_JOB_TIMEOUT = '1h';
export const DEFAULT_JOB_DEADLINE = '7d';
export const DEFAULT_RETRY_BACKOFF = '10s';
/** The longest wait between two attempts, however many came before. */
export const MAX_RETRY_BACKOFF_MS = 3_600_000;

const TARGETS = 'scheduling.selectors (labels a device must have; {} selects every device) or scheduling.devices (ids)';

const DEADLINE_FORM = 'must be a duration from now (12h, 7d) or an RFC 3339 time (2026-12-24T18:00:00Z)';

export function validateJobSpec(value: unknown, now = new Date()): Validated<JobSpec> {
  const result = validate(JobSpecSchema, value);
  if (!result.ok) return { ok: false, issues: withLooseIssues(result.issues.map(plainIssue), value) };
  const issues = jobIssues(result.value, now);
  return issues.length === 0 ? result : { ok: false, issues };
}

/**
 * Schema errors in the words of the field they concern: a job without a target says what a
 * target is, a bad deadline what a deadline is (not the three branches of its union), a
 * restart policy written as a string that a job has none to set.
 */
function plainIssue(issue: ValidationIssue): ValidationIssue {
  const { path, message } = issue;
  if (path === 'scheduling' && /fewer than 1 properties/.test(message)) return { path, message: `must name the devices: ${TARGETS}` };
  if (path === 'scheduling' && message === 'is required') return { path, message: `is required: a job names its devices with ${TARGETS}` };
  if (path === 'spec.deadline') return { path, message: DEADLINE_FORM };
  if (/^spec\.window\.days\[\d+\]$/.test(path) && message.startsWith('must match pattern')) {
    return { path, message: 'must be a weekday (mon, tue, wed, thu, fri, sat, sun) or a range of them (mon-fri)' };
  }
  if (/^spec\.window\.(from|to)$/.test(path) && message.startsWith('must match pattern')) {
    return { path, message: 'must be a 24-hour time, HH:MM or HH:MM:SS (02:00, 23:30:15)' };
  }
  if (/^spec\.containers\[\d+\]\.restartPolicy$/.test(path) && message === 'must be object') {
    return { path, message: 'a job\'s containers run once: leave restartPolicy out (it is always "no"; spec.retries tries again)' };
  }
  return issue;
}

/**
 * The checks past the schema that can be made on a spec the schema refused, so one bad spec
 * is one error listing all its problems rather than one round of them per fix: a zero
 * timeout, an unknown time zone, an empty window. Each only where its field has the right form.
 */
function withLooseIssues(issues: ValidationIssue[], value: unknown): ValidationIssue[] {
  const spec = (value as { spec?: Record<string, unknown> } | undefined)?.spec;
  if (typeof spec !== 'object' || spec === null) return dedupe(issues);
  const loose: ValidationIssue[] = [];
  const timeout = spec.timeout;
  if (typeof timeout === 'string' && new RegExp(DURATION_PATTERN).test(timeout) && parseDuration(timeout) <= 0) {
    loose.push({ path: 'spec.timeout', message: 'must be longer than 0' });
  }
  const window = spec.window as Record<string, unknown> | undefined;
  if (typeof window === 'object' && window !== null) {
    if (typeof window.timezone === 'string' && !isTimeZone(window.timezone)) {
      loose.push({
        path: 'spec.window.timezone',
        message: `unknown time zone "${window.timezone}": use an IANA name such as Europe/Berlin or UTC`,
      });
    }
    if (typeof window.from === 'string' && window.from === window.to) {
      loose.push({ path: 'spec.window.to', message: 'must differ from "from": the window would be empty' });
    }
  }
  return dedupe([...issues, ...loose]);
}

function dedupe(issues: ValidationIssue[]): ValidationIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\n${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
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
    if (container.dependsOn) {
      issues.push({ path: `${at}.dependsOn`, message: "a job's containers start together: dependsOn is for an app's containers" });
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
  if (spec.window) {
    const problems = windowIssues(spec.window, 'spec.window');
    issues.push(...problems);
    if (problems.length === 0 && spec.window.timezone !== undefined) issues.push(...windowAfterDeadline(spec, now));
  }
  return issues;
}

/**
 * A window in a named zone that first opens after the deadline: no device could ever start
 * the job. (Without a zone each device judges in its own, which the hub does not know.)
 */
function windowAfterDeadline(spec: JobSpec['spec'], now: Date): ValidationIssue[] {
  const window = spec.window;
  if (!window) return [];
  const deadline = jobDeadline(spec.deadline, now);
  const state = windowState(window, now);
  if (state.open || state.opensAt === undefined || state.opensAt.getTime() < deadline.getTime()) return [];
  return [
    {
      path: 'spec.deadline',
      message: `is ${deadline.toISOString()}, before the window (${describeWindow(window)}) first opens at ${state.opensAt.toISOString()}: no device could start the job`,
    },
  ];
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
