/**
 * Job rows as both engines store them (jobs, job_executions, job_uids), and the one decision both
 * make about a device's report: what it changes of the stored execution. The engines differ only
 * in how they read, lock and write; what a report does is decided here, so SQLite and PostgreSQL
 * cannot drift apart on the invariants of broker/store/jobs.ts.
 *
 * How far an execution has got is its progress: queued before any attempt (attempt 0), then for
 * each attempt n `running` and, when it ended with a retry pending, `queued` again at attempt n
 * (the attempt last run, waiting for n + 1), then a final state. A report applies only when it is
 * further along than what is stored, or as far along with other details (a new message while it
 * waits for its window); a stored final state is never left, except `expired` for a final state
 * the device reported.
 */
import {
  FINAL_JOB_EXECUTION_STATES,
  JOB_EXECUTION_STATES,
  type JobExecutionReport,
  type JobExecutionState,
  type JobPhase,
  type JobSpec,
} from '../../shared/index.js';
import type { ExecutionTransition, StoredExecution, StoredJob } from './jobs.js';

export interface JobRow {
  name: string;
  uid: string;
  spec: string;
  phase: string;
  reason: string | null;
  created_at: string;
  deadline: string;
  updated_at: string;
}

/** What a report may change of an execution; the rest (job, device, admitted, cancel_requested) is the hub's. */
export interface ReportedColumns {
  state: string;
  attempt: number;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  container: string | null;
  message: string | null;
  next_attempt_at: string | null;
  /** JSON array of lines. */
  output: string | null;
}

export interface ExecutionRow extends ReportedColumns {
  job: string;
  device: string;
  /** 0 or 1, as both engines store flags. */
  admitted: number;
  cancel_requested: number;
}

/** An execution row with its job's uid: what reports are matched by. */
export interface ReportedExecutionRow extends ExecutionRow {
  uid: string;
}

const EXECUTION_COLUMNS_LIST = [
  'job',
  'device',
  'state',
  'attempt',
  'admitted',
  'cancel_requested',
  'updated_at',
  'started_at',
  'finished_at',
  'exit_code',
  'container',
  'message',
  'next_attempt_at',
  'output',
] as const;
export const EXECUTION_COLUMNS = EXECUTION_COLUMNS_LIST.join(', ');
/** The execution columns of `job_executions e`, for joins. */
export const E_EXECUTION_COLUMNS = EXECUTION_COLUMNS_LIST.map((column) => `e.${column}`).join(', ');

export const JOB_COLUMNS = 'name, uid, spec, phase, reason, created_at, deadline, updated_at';
/** A job row's values in JOB_COLUMNS' order. */
export function jobValues(row: JobRow): Array<string | null> {
  return [row.name, row.uid, row.spec, row.phase, row.reason, row.created_at, row.deadline, row.updated_at];
}

/** An execution row with its job's columns beside it, each as `job_<column>` (desiredFor's join). */
export type JoinedExecutionRow = ExecutionRow & { [K in keyof JobRow as `job_${K}`]: JobRow[K] };
/** The select list of that join, over `job_executions e JOIN jobs j`. */
export const JOINED_COLUMNS = `${E_EXECUTION_COLUMNS}, ${JOB_COLUMNS.split(', ')
  .map((column) => `j.${column} AS job_${column}`)
  .join(', ')}`;

export function joinedFromRow(row: JoinedExecutionRow): { job: StoredJob; execution: StoredExecution } {
  const job: JobRow = {
    name: row.job_name,
    uid: row.job_uid,
    spec: row.job_spec,
    phase: row.job_phase,
    reason: row.job_reason,
    created_at: row.job_created_at,
    deadline: row.job_deadline,
    updated_at: row.job_updated_at,
  };
  return { job: jobFromRow(job), execution: executionFromRow(row) };
}

/** The columns a report writes, in the order reportedValues gives their values. */
export const REPORTED_COLUMNS = [
  'state',
  'attempt',
  'updated_at',
  'started_at',
  'finished_at',
  'exit_code',
  'container',
  'message',
  'next_attempt_at',
  'output',
] as const;

export function jobColumns(job: StoredJob): JobRow {
  return {
    name: job.name,
    uid: job.uid,
    spec: JSON.stringify(job.spec),
    phase: job.phase,
    reason: job.reason ?? null,
    // Normalized, so deadlines compare with `now` as strings in SQL on both engines.
    created_at: isoTime(job.createdAt),
    deadline: isoTime(job.deadline),
    updated_at: isoTime(job.updatedAt),
  };
}

export function jobFromRow(row: JobRow): StoredJob {
  return {
    name: row.name,
    uid: row.uid,
    spec: JSON.parse(row.spec) as JobSpec,
    phase: row.phase as JobPhase,
    ...(row.reason === null ? {} : { reason: row.reason }),
    createdAt: row.created_at,
    deadline: row.deadline,
    updatedAt: row.updated_at,
  };
}

export function executionFromRow(row: ExecutionRow): StoredExecution {
  return {
    job: row.job,
    device: row.device,
    state: row.state as JobExecutionState,
    attempt: row.attempt,
    admitted: row.admitted === 1,
    cancelRequested: row.cancel_requested === 1,
    updatedAt: row.updated_at,
    ...(row.started_at === null ? {} : { startedAt: row.started_at }),
    ...(row.finished_at === null ? {} : { finishedAt: row.finished_at }),
    ...(row.exit_code === null ? {} : { exitCode: row.exit_code }),
    ...(row.container === null ? {} : { container: row.container }),
    ...(row.message === null ? {} : { message: row.message }),
    ...(row.next_attempt_at === null ? {} : { nextAttemptAt: row.next_attempt_at }),
    ...(row.output === null ? {} : { output: JSON.parse(row.output) as string[] }),
  };
}

/** ISO-8601 in UTC with milliseconds (Date#toISOString), the one form timestamps are stored in. */
export function isoTime(text: string): string {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new RangeError(`not a time: ${JSON.stringify(text)}`);
  return date.toISOString();
}

const isFinal = (state: string) => FINAL_JOB_EXECUTION_STATES.has(state as JobExecutionState);

/** How far along an execution is: larger is further (see the header); final states are furthest. */
function progress(state: string, attempt: number): number {
  if (isFinal(state)) return Number.POSITIVE_INFINITY;
  return state === 'running' ? 2 * attempt - 1 : 2 * attempt;
}

/** The columns a report sets: the whole of the attempt it describes, so what it leaves out is cleared. */
export function reportedColumns(report: JobExecutionReport, now: string): ReportedColumns {
  return {
    state: report.state,
    attempt: report.attempt,
    updated_at: now,
    started_at: report.startedAt ?? null,
    finished_at: report.finishedAt ?? null,
    exit_code: report.exitCode ?? null,
    container: report.container ?? null,
    message: report.message ?? null,
    next_attempt_at: report.nextAttemptAt ?? null,
    output: report.output === undefined ? null : JSON.stringify(report.output),
  };
}

/** Whether the two say the same of the execution (the time of writing aside). */
function sameReported(a: ReportedColumns, b: ReportedColumns): boolean {
  return REPORTED_COLUMNS.every((column) => column === 'updated_at' || a[column] === b[column]);
}

/**
 * What a report changes of a stored execution: the columns to write, or undefined when it changes
 * nothing (a repeat, a report behind what is stored, anything about a final execution but a device's
 * final state replacing `expired`).
 */
export function reportedChange(stored: ExecutionRow, report: JobExecutionReport, now: string): ReportedColumns | undefined {
  const next = reportedColumns(report, now);
  if (isFinal(stored.state)) {
    const replacesExpired = stored.state === 'expired' && isFinal(next.state) && next.state !== 'expired';
    return replacesExpired && next.attempt >= stored.attempt ? next : undefined;
  }
  if (next.attempt < stored.attempt) return undefined;
  const from = progress(stored.state, stored.attempt);
  const to = progress(next.state, next.attempt);
  if (to < from) return undefined;
  if (to === from && sameReported(stored, next)) return undefined;
  return next;
}

/** One execution's change, as a write and (when its state or attempt moved) a transition. */
export interface ReportWrite {
  row: ExecutionRow;
  /** Present when the state or the attempt changed; a new message alone is written without one. */
  transition?: ExecutionTransition;
}

/**
 * Applies a device's reports, in order, to its stored executions (keyed by their job's uid): the
 * rows to write, each once with its final values. Reports of executions not stored are ignored.
 * Several reports of one execution apply one after the other; the transition is from the stored
 * state to the last one.
 */
export function applyReports(stored: readonly ReportedExecutionRow[], reports: readonly JobExecutionReport[], now: string): ReportWrite[] {
  const byUid = new Map(stored.map((row) => [row.uid, { before: row, current: row as ExecutionRow }]));
  const changed = new Set<string>();
  for (const report of reports) {
    const entry = byUid.get(report.execution);
    if (entry === undefined) continue;
    const change = reportedChange(entry.current, report, now);
    if (change === undefined) continue;
    entry.current = { ...entry.current, ...change };
    changed.add(report.execution);
  }
  return [...changed].map((uid) => {
    const { before, current } = byUid.get(uid)!;
    const moved = before.state !== current.state || before.attempt !== current.attempt;
    return {
      row: current,
      ...(moved
        ? {
            transition: {
              job: current.job,
              device: current.device,
              from: before.state as JobExecutionState,
              to: current.state as JobExecutionState,
              execution: executionFromRow(current),
            },
          }
        : {}),
    };
  });
}

/**
 * The transitions of rows the hub moved itself (a stop, an expiry), all from `from`, in (job, device)
 * byte order: RETURNING gives rows in no set order on either engine.
 */
export function transitionsFrom(rows: readonly ExecutionRow[], from: JobExecutionState): ExecutionTransition[] {
  const bytes = (row: ExecutionRow) => Buffer.from(`${row.job}\0${row.device}`);
  return [...rows]
    .sort((a, b) => Buffer.compare(bytes(a), bytes(b)))
    .map((row) => {
      const execution = executionFromRow(row);
      return { job: row.job, device: row.device, from, to: execution.state, execution };
    });
}

/** The values of REPORTED_COLUMNS, in order. */
export function reportedValues(row: ReportedColumns): Array<string | number | null> {
  return REPORTED_COLUMNS.map((column) => row[column]);
}

export function zeroCounts(): Record<JobExecutionState, number> {
  return Object.fromEntries(JOB_EXECUTION_STATES.map((state) => [state, 0])) as Record<JobExecutionState, number>;
}

/** Executions not final, as SQL: the states an execution holds a slot and stays in desired documents in. */
export const UNFINISHED_STATES_SQL = "('queued', 'running')";
