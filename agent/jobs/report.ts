/**
 * Executions as the state report carries them (JobExecutionReport): every one
 * the desired state names, in its order, and after them any the agent still
 * stops that it no longer names. Pure: records and desired jobs in, reports out.
 */
import { type DesiredJob, FINAL_JOB_EXECUTION_STATES, type JobExecutionReport } from '../../shared/index.js';
import type { JobRecord } from './record.js';

/** The schema's bound on `message`. */
const MAX_MESSAGE = 1024;

export interface ReportInputs {
  desired: readonly DesiredJob[];
  records: ReadonlyMap<string, JobRecord>;
  /** What an execution does before its attempt starts (pulling its image), by execution id. */
  preparing: ReadonlyMap<string, string>;
}

export function executionReports({ desired, records, preparing }: ReportInputs): JobExecutionReport[] {
  const named = new Set(desired.map((job) => job.execution));
  const reports = desired.map((job) =>
    reportOf(records.get(job.execution) ?? { execution: job.execution, job: job.name, attempt: 0, state: 'queued' }, preparing),
  );
  for (const record of records.values()) {
    if (!named.has(record.execution) && !FINAL_JOB_EXECUTION_STATES.has(record.state)) reports.push(reportOf(record, preparing));
  }
  return reports;
}

function reportOf(record: JobRecord, preparing: ReadonlyMap<string, string>): JobExecutionReport {
  const message = preparing.get(record.execution) ?? record.message;
  return {
    name: record.job,
    execution: record.execution,
    state: record.state,
    attempt: record.attempt,
    ...(message !== undefined ? { message: cut(message) } : {}),
    ...(record.exitCode !== undefined ? { exitCode: record.exitCode } : {}),
    ...(record.container !== undefined ? { container: record.container } : {}),
    ...(record.startedAt !== undefined ? { startedAt: record.startedAt } : {}),
    ...(record.finishedAt !== undefined ? { finishedAt: record.finishedAt } : {}),
    ...(record.state === 'queued' && record.nextAttemptAt !== undefined ? { nextAttemptAt: record.nextAttemptAt } : {}),
    ...(record.output !== undefined && record.output.length > 0 ? { output: record.output } : {}),
  };
}

function cut(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE - 1)}…`;
}
