/**
 * What the job commands print for people (docs/jobs.md): the line `flotilla run`
 * prints, the `get jobs` table, the `describe job` sections, the counts line a
 * watch prints on every change, and how a watched job ended. Pure functions of
 * the hub's views (JobSummary, JobDetail) and `now`, so each is a unit test.
 *
 * Apart from the commands, and loaded only by the commands that show a job, so
 * `flotilla get devices` does not pay for it.
 *
 * Text that came from devices (messages, output lines) goes through `cell()` or
 * the table and field helpers, which do it: a device must not be able to move
 * the operator's cursor.
 */

import type { JobCounts, JobDetail, JobExecutionView, JobSummary } from '../shared/api/results.js';
import { DEFAULT_JOB_TIMEOUT, DEFAULT_RETRY_BACKOFF } from '../shared/job-spec.js';
import { JOB_EXECUTION_STATES, type JobExecutionState, type JobSpec } from '../shared/schemas/job.js';
import { describeWindow } from '../shared/update-window.js';
import { containerFields } from './commands/describe.js';
import { formatScheduling } from './commands/get.js';
import { progressBar } from './commands/rollout.js';
import { CliError, EXIT_FAILED } from './errors.js';
import { cell, formatAge, formatFields, formatTable, humanDuration, indent, roundedDuration } from './output.js';

/** The states an execution does not leave, in the order the counts list them. */
const FINAL: readonly JobExecutionState[] = ['succeeded', 'failed', 'timed-out', 'canceled', 'expired'];

/** How many devices a failure message names before "and N more". */
const NAMED_DEVICES = 5;

/** `3 devices`, `1 device`. */
export function devicesText(n: number): string {
  return `${n} ${n === 1 ? 'device' : 'devices'}`;
}

/** `job/diag created: 3 devices`, then (unless a watch follows) where to follow it. */
export function createdText(job: Pick<JobSummary, 'name' | 'counts'>, watching: boolean): string {
  const line = `job/${job.name} created: ${devicesText(job.counts.total)}\n`;
  return watching ? line : `${line}follow it: flotilla describe job ${job.name} -w\n`;
}

/** `2 succeeded, 1 running` in state order, the states with none left out; `no devices` for an empty job. */
export function countsText(counts: JobCounts): string {
  const parts = JOB_EXECUTION_STATES.filter((state) => counts[state] > 0).map((state) => `${counts[state]} ${state}`);
  return parts.length === 0 ? 'no devices' : parts.join(', ');
}

/** Executions that will not change any more (succeeded, failed, timed-out, canceled, expired). */
export function finishedCount(counts: JobCounts): number {
  return FINAL.reduce((sum, state) => sum + counts[state], 0);
}

/** kubectl's COMPLETIONS: `3/5` devices succeeded. */
export function completions(counts: JobCounts): string {
  return `${counts.succeeded}/${counts.total}`;
}

/** What a watch prints on each change: `job/diag active: 1 succeeded, 2 running`. */
export function progressLine(job: Pick<JobSummary, 'name' | 'phase' | 'counts'>): string {
  return `job/${job.name} ${job.phase}: ${countsText(job.counts)}\n`;
}

/** `in 6d` while the deadline is ahead, `passed 2h ago` after; `-` once the job has ended, when it no longer matters. */
export function deadlineCell(job: Pick<JobSummary, 'phase' | 'deadline'>, now: number): string {
  if (job.phase !== 'active') return '-';
  return untilText(job.deadline, now);
}

/** Rounded to the nearest unit, so a fresh 7d deadline reads `in 7d`. */
function untilText(at: string, now: number): string {
  const ms = Date.parse(at);
  if (Number.isNaN(ms)) return '<unknown>';
  return ms > now ? `in ${roundedDuration(ms - now)}` : `passed ${roundedDuration(now - ms)} ago`;
}

export const JOBS_TABLE_HEADERS = [
  'NAME',
  'PHASE',
  'COMPLETIONS',
  'QUEUED',
  'RUNNING',
  'FAILED',
  'TIMED-OUT',
  'CANCELED',
  'EXPIRED',
  'AGE',
  'DEADLINE',
] as const;

/** One job's cells in the `get jobs` table (JOBS_TABLE_HEADERS). */
export function jobRow(job: JobSummary, now: number = Date.now()): string[] {
  return [
    job.name,
    job.phase,
    completions(job.counts),
    String(job.counts.queued),
    String(job.counts.running),
    String(job.counts.failed),
    String(job.counts['timed-out']),
    String(job.counts.canceled),
    String(job.counts.expired),
    formatAge(job.createdAt, now),
    deadlineCell(job, now),
  ];
}

export function jobsTable(jobs: readonly JobSummary[], now: number = Date.now()): string {
  return formatTable(
    JOBS_TABLE_HEADERS,
    jobs.map((job) => jobRow(job, now)),
  );
}

/**
 * How long, compactly and exactly enough to compare runs: `45s`, `1m30s`, `2h5m`, `3d4h`.
 * Under a second reads `0s`.
 */
export function durationCell(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const units: [number, string][] = [
    [86_400, 'd'],
    [3600, 'h'],
    [60, 'm'],
    [1, 's'],
  ];
  const first = units.findIndex(([size]) => s >= size);
  if (first < 0) return '0s';
  const [size, unit] = units[first]!;
  const whole = Math.floor(s / size);
  const next = units[first + 1];
  const rest = next ? Math.floor((s - whole * size) / next[0]) : 0;
  return next && rest > 0 ? `${whole}${unit}${rest}${next[1]}` : `${whole}${unit}`;
}

/** How long the attempt ran (or runs so far); `-` before it started. */
function executionDuration(execution: JobExecutionView, now: number): string {
  if (execution.startedAt === undefined) return '-';
  const started = Date.parse(execution.startedAt);
  const ended = execution.finishedAt !== undefined ? Date.parse(execution.finishedAt) : execution.state === 'running' ? now : NaN;
  if (Number.isNaN(started) || Number.isNaN(ended)) return '-';
  return durationCell(ended - started);
}

/** `3`, or `3 (migrate)` when the job has several containers and the exit code needs its owner. */
function exitCell(execution: JobExecutionView, containers: number): string {
  if (execution.exitCode === undefined) return '-';
  return containers > 1 && execution.container !== undefined
    ? `${execution.exitCode} (${execution.container})`
    : String(execution.exitCode);
}

/**
 * `3m20s ago`, as kubectl writes ages; `-` while no container of the attempt has started
 * (waiting, pulling, or a pull that failed), whatever the attempt number says.
 */
function startedCell(execution: JobExecutionView, now: number): string {
  const at = execution.startedAt === undefined ? NaN : Date.parse(execution.startedAt);
  return Number.isNaN(at) ? '-' : `${humanDuration(now - at)} ago`;
}

function messageCell(execution: JobExecutionView, now: number): string {
  const next =
    execution.nextAttemptAt !== undefined && execution.state === 'queued' ? `next attempt ${untilText(execution.nextAttemptAt, now)}` : '';
  return [execution.message ?? '', next].filter(Boolean).join('; ');
}

function byDevice(a: JobExecutionView, b: JobExecutionView): number {
  return a.device < b.device ? -1 : a.device > b.device ? 1 : 0;
}

export function executionsTable(job: Pick<JobDetail, 'executions' | 'spec'>, now: number = Date.now()): string {
  const containers = job.spec.spec.containers.length;
  return formatTable(
    ['DEVICE', 'STATE', 'ATTEMPT', 'EXIT', 'STARTED', 'DURATION', 'MESSAGE'],
    [...job.executions]
      .sort(byDevice)
      .map((e) => [
        e.device,
        e.state,
        String(e.attempt),
        exitCell(e, containers),
        startedCell(e, now),
        executionDuration(e, now),
        messageCell(e, now),
      ]),
  );
}

function timestamp(at: string, now: number): string {
  return `${at} (${formatAge(at, now)} ago)`;
}

function timeoutText(spec: JobSpec['spec']): string {
  return `${spec.timeout ?? `${DEFAULT_JOB_TIMEOUT} (default)`} per attempt`;
}

function retriesText(retries: JobSpec['spec']['retries']): string {
  if (retries === undefined || retries.limit === 0) return 'none (one attempt)';
  const backoff = retries.backoff ?? `${DEFAULT_RETRY_BACKOFF} (default)`;
  const on = (retries.on ?? ['failed', 'timed-out']).join(' or ');
  return `up to ${retries.limit} more ${retries.limit === 1 ? 'attempt' : 'attempts'} when one ends ${on}; first backoff ${backoff}, doubling`;
}

/** The device judges the window on its own clock: without a zone it is each device's own, not this terminal's. */
function windowText(window: JobSpec['spec']['window']): string {
  if (window === undefined) return '<none> (starts as soon as a device has it)';
  return describeWindow(window, window.timezone ?? "(each device's own time zone)");
}

function rolloutText(rollout: JobSpec['spec']['rollout']): string {
  const parts = [rollout?.maxConcurrent !== undefined ? `at most ${devicesText(rollout.maxConcurrent)} at once` : 'every device at once'];
  if (rollout?.abortAfterFailures !== undefined) parts.push(`abort after ${rollout.abortAfterFailures} failed`);
  else if (rollout?.abortAfterFailurePercent !== undefined) parts.push(`abort after ${rollout.abortAfterFailurePercent} of devices failed`);
  else parts.push('never aborted');
  return parts.join(', ');
}

/** Failed and timed-out executions that reported output: what an operator reads first. */
function failedWithOutput(job: Pick<JobDetail, 'executions'>): JobExecutionView[] {
  return job.executions.filter((e) => (e.state === 'failed' || e.state === 'timed-out') && (e.output?.length ?? 0) > 0).sort(byDevice);
}

/** `gw-2 (failed, exit 3, attempt 2)`. */
function executionHeading(execution: JobExecutionView): string {
  const parts: string[] = [execution.state];
  if (execution.exitCode !== undefined) {
    parts.push(`exit ${execution.exitCode}${execution.container !== undefined ? ` in ${execution.container}` : ''}`);
  }
  parts.push(`attempt ${execution.attempt}`);
  return `${execution.device} (${parts.join(', ')})`;
}

export function describeJob(job: JobDetail, now: number = Date.now()): string {
  const { spec } = job.spec;
  let out = formatFields([
    ['Name', job.name],
    ['Phase', job.reason !== undefined ? `${job.phase}: ${job.reason}` : job.phase],
    ['Created', timestamp(job.createdAt, now)],
    ['Deadline', `${job.deadline} (${untilText(job.deadline, now)})`],
    ['Scheduling', formatScheduling(job.spec.scheduling)],
    ['Timeout', timeoutText(spec)],
    ['Retries', retriesText(spec.retries)],
    ['Window', windowText(spec.window)],
    ['Rollout', rolloutText(spec.rollout)],
    ['Progress', `${progressBar(finishedCount(job.counts), job.counts.total)} finished`],
    ['Counts', countsText(job.counts)],
  ]);
  out += 'Containers:\n';
  for (const container of spec.containers) {
    out += `  ${cell(container.name)}:\n`;
    out += formatFields(containerFields(container), '    ');
  }
  if (job.executions.length === 0) return out + formatFields([['Executions', '<none>']]);
  out += 'Executions:\n';
  out += indent(executionsTable(job, now));
  const failed = failedWithOutput(job);
  if (failed.length > 0) {
    out += 'Output of failed executions (last lines):\n';
    for (const execution of failed) {
      out += `  ${cell(executionHeading(execution))}:\n`;
      for (const line of execution.output ?? []) {
        const shown = cell(line).trimEnd();
        out += shown === '' ? '\n' : `    ${shown}\n`;
      }
    }
  }
  return out;
}

/** The final states that are not a success, in the order an outcome names their devices: what went wrong first. */
const NOT_SUCCEEDED: readonly JobExecutionState[] = ['failed', 'timed-out', 'expired', 'canceled'];

/**
 * Why an execution ended as it did, in the device's words: its message when that already
 * says the exit code (the agent's does: `collect exited 3`), else the code and container
 * first, then the message (a pull the engine refused says only the engine's error).
 */
export function endingReason(execution: JobExecutionView): string {
  const message = execution.message ?? '';
  if (execution.exitCode === undefined) return message;
  const exit = `exit ${execution.exitCode}${execution.container !== undefined ? ` in ${execution.container}` : ''}`;
  if (new RegExp(`(?<![0-9])${execution.exitCode}(?![0-9])`).test(message)) return message;
  return message === '' ? exit : `${exit}: ${message}`;
}

/** `gw-2 (failed, attempt 2): collect exited 3`; `gw-3 (expired): not started by its deadline, …` before any attempt. */
function outcomeLine(execution: JobExecutionView): string {
  const attempt = execution.attempt > 0 ? `, attempt ${execution.attempt}` : '';
  const reason = endingReason(execution);
  return `${execution.device} (${execution.state}${attempt})${reason !== '' ? `: ${reason}` : ''}`;
}

/** Whether a container of the execution ran, so the device holds its output: a pull that failed starts none. */
function started(execution: JobExecutionView): boolean {
  return execution.attempt >= 1 && execution.startedAt !== undefined;
}

/** `gw-3 had not confirmed its stop after 60s (…)`: the devices of a stopped job still running it when the watch gave up. */
function unconfirmedText(devices: readonly string[], waitedMs: number): string {
  const named = devices.slice(0, NAMED_DEVICES).join(', ');
  const more = devices.length > NAMED_DEVICES ? ` and ${devices.length - NAMED_DEVICES} more` : '';
  return cell(
    `${named}${more} had not confirmed the stop after ${durationCell(waitedMs)}: still running there as far as the hub knows (a device offline reports it when it reconnects)`,
  );
}

/**
 * How a job that is no longer active ended, for a watch's exit code: undefined when every
 * execution succeeded (exit 0), else an error (exit 1) saying what happened, naming the
 * devices that did not succeed with why, and where to read more: `logs --job` only for a
 * device whose execution started, since one that never ran a container has no output.
 * `unconfirmed`: the devices still running it when the watch stopped waiting for them.
 */
export function jobOutcome(job: JobDetail, unconfirmed: readonly string[] = [], waitedMs = 0): CliError | undefined {
  const { counts } = job;
  if (job.phase === 'complete' && counts.succeeded === counts.total) return undefined;
  const subject = `job/${job.name}`;
  const notSucceeded = counts.total - counts.succeeded;
  const head =
    job.phase === 'complete'
      ? `${subject} is complete, but ${notSucceeded} of ${devicesText(counts.total)} did not succeed: ${countsText(counts)}`
      : `${subject} was ${job.phase}${job.reason !== undefined ? ` (${job.reason})` : ''}: ${countsText(counts)}`;
  const ended = NOT_SUCCEEDED.flatMap((state) => job.executions.filter((e) => e.state === state).sort(byDevice));
  const lines = ended.slice(0, NAMED_DEVICES).map((e) => cell(outcomeLine(e)));
  if (ended.length > NAMED_DEVICES) lines.push(`and ${ended.length - NAMED_DEVICES} more`);
  if (unconfirmed.length > 0) lines.push(unconfirmedText(unconfirmed, waitedMs));
  lines.push(`see each device's state and output: flotilla describe job ${job.name}`);
  const ran = ended.find(started);
  if (ran !== undefined) lines.push(`one device's whole output: flotilla logs ${ran.device} --job ${job.name}`);
  return new CliError(head, EXIT_FAILED, lines);
}
