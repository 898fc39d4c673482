/**
 * The PostgreSQL engine of JobStore. Replicas write at once: each records the reports of the
 * devices connected to it, and any of them may cancel a job while the leader expires and admits.
 *
 * Invariants:
 * - A write that decides from what is stored holds row locks on what it decides from until it
 *   commits (SELECT … FOR UPDATE, or one UPDATE whose WHERE PostgreSQL checks again on the row as
 *   the other writer left it), so a report recorded by two replicas at once, or a job stopped by
 *   two, makes each transition once, and final stays final.
 * - Writers that lock several executions lock them in (job, device) order: a device's reports by
 *   job, a job's stop and admit by device, expiry by both. Any two of them then wait for each other
 *   in one direction only, never in a cycle. A stop and a delete lock the job's row first; nothing
 *   that holds an execution's lock waits for a job's.
 * - A device's report is first decided on a plain read: a report that changes nothing (state reports
 *   repeat every few seconds) takes no lock and writes nothing. One that does is decided again under
 *   the locks, on the rows as they are then.
 */
import type { JobExecutionReport, JobExecutionState } from '../../../shared/index.js';
import {
  applyReports,
  E_EXECUTION_COLUMNS,
  EXECUTION_COLUMNS,
  type ExecutionRow,
  executionFromRow,
  isoTime,
  JOB_COLUMNS,
  JOINED_COLUMNS,
  type JobRow,
  type JoinedExecutionRow,
  jobColumns,
  jobFromRow,
  jobValues,
  joinedFromRow,
  REPORTED_COLUMNS,
  type ReportedExecutionRow,
  reportedValues,
  transitionsFrom,
  UNFINISHED_STATES_SQL,
  zeroCounts,
} from '../job-rows.js';
import { type ExecutionTransition, JobExistsError, type JobStore, JobUidUsedError, type StoredExecution, type StoredJob } from '../jobs.js';
import type { PgDatabase } from './database.js';

const SELECT_REPORTED = `SELECT ${E_EXECUTION_COLUMNS}, j.uid FROM job_executions e JOIN jobs j ON j.name = e.job
  WHERE e.device = $1 AND j.uid = ANY($2::text[]) ORDER BY e.job`;

const UPDATE_REPORTED = `UPDATE job_executions SET ${REPORTED_COLUMNS.map((column, i) => `${column} = $${i + 1}`).join(', ')}
  WHERE job = $${REPORTED_COLUMNS.length + 1} AND device = $${REPORTED_COLUMNS.length + 2}`;

export class PgJobStore implements JobStore {
  constructor(private readonly db: PgDatabase) {}

  async create(job: StoredJob, devices: readonly string[]): Promise<void> {
    const row = jobColumns(job);
    await this.db.transaction(async (tx) => {
      // A job made meanwhile under the name by another replica is waited for, then this one is refused.
      // Either unique column may refuse the row: the name in use is what the operator is told first.
      const made = await tx.query(
        `INSERT INTO jobs (${JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING name`,
        jobValues(row),
      );
      if (made.length === 0) {
        const [named] = await tx.query('SELECT name FROM jobs WHERE name = $1', [row.name]);
        throw named ? new JobExistsError(row.name) : new JobUidUsedError(row.uid);
      }
      const uid = await tx.query(
        'INSERT INTO job_uids (uid, job, created_at) VALUES ($1, $2, $3) ON CONFLICT (uid) DO NOTHING RETURNING uid',
        [row.uid, row.name, row.created_at],
      );
      if (uid.length === 0) throw new JobUidUsedError(row.uid);
      await tx.query(
        `INSERT INTO job_executions (job, device, state, attempt, admitted, cancel_requested, updated_at)
         SELECT $1, device, 'queued', 0, 0, 0, $3 FROM unnest($2::text[]) AS device ON CONFLICT (job, device) DO NOTHING`,
        [row.name, [...devices], row.created_at],
      );
    });
  }

  async get(name: string): Promise<StoredJob | undefined> {
    const [row] = await this.db.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE name = $1`, [name]);
    return row ? jobFromRow(row) : undefined;
  }

  async list(): Promise<StoredJob[]> {
    return (await this.db.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, name`)).map(jobFromRow);
  }

  async executions(name: string): Promise<StoredExecution[]> {
    const rows = await this.db.query<ExecutionRow>(`SELECT ${EXECUTION_COLUMNS} FROM job_executions WHERE job = $1 ORDER BY device`, [
      name,
    ]);
    return rows.map(executionFromRow);
  }

  async desiredFor(device: string): Promise<Array<{ job: StoredJob; execution: StoredExecution }>> {
    const rows = await this.db.query<JoinedExecutionRow>(
      `SELECT ${JOINED_COLUMNS} FROM job_executions e JOIN jobs j ON j.name = e.job
       WHERE e.device = $1 AND e.admitted = 1 AND e.state IN ${UNFINISHED_STATES_SQL}
       ORDER BY j.created_at, j.name`,
      [device],
    );
    return rows.map(joinedFromRow);
  }

  async recordReports(device: string, reports: readonly JobExecutionReport[], now: string): Promise<ExecutionTransition[]> {
    if (reports.length === 0) return [];
    const at = isoTime(now);
    const uids = [...new Set(reports.map((report) => report.execution))];
    const seen = await this.db.query<ReportedExecutionRow>(SELECT_REPORTED, [device, uids]);
    if (applyReports(seen, reports, at).length === 0) return [];
    return this.db.transaction(async (tx) => {
      const locked = await tx.query<ReportedExecutionRow>(`${SELECT_REPORTED} FOR UPDATE OF e`, [device, uids]);
      const writes = applyReports(locked, reports, at);
      for (const { row } of writes) await tx.query(UPDATE_REPORTED, [...reportedValues(row), row.job, row.device]);
      return writes.flatMap(({ transition }) => (transition ? [transition] : []));
    });
  }

  async admit(job: string, devices: readonly string[], now: string): Promise<void> {
    await this.db.query(
      `UPDATE job_executions e SET admitted = 1, updated_at = $3 FROM (
         SELECT job, device FROM job_executions
         WHERE job = $1 AND device = ANY($2::text[]) AND admitted = 0 AND state = 'queued'
         ORDER BY device FOR UPDATE
       ) chosen
       WHERE e.job = chosen.job AND e.device = chosen.device AND e.admitted = 0 AND e.state = 'queued'`,
      [job, [...devices], isoTime(now)],
    );
  }

  async stop(name: string, phase: 'canceled' | 'aborted', reason: string, now: string): Promise<ExecutionTransition[] | false> {
    const at = isoTime(now);
    return this.db.transaction(async (tx) => {
      // The job's row first: a second stop waits here, then finds the job no longer active.
      const stopped = await tx.query(
        "UPDATE jobs SET phase = $2, reason = $3, updated_at = $4 WHERE name = $1 AND phase = 'active' RETURNING name",
        [name, phase, reason, at],
      );
      if (stopped.length === 0) return false;
      await tx.query(`SELECT 1 FROM job_executions WHERE job = $1 AND state IN ${UNFINISHED_STATES_SQL} ORDER BY device FOR UPDATE`, [
        name,
      ]);
      await tx.query(
        `UPDATE job_executions SET cancel_requested = 1, updated_at = $2
         WHERE job = $1 AND admitted = 1 AND cancel_requested = 0 AND state IN ${UNFINISHED_STATES_SQL}`,
        [name, at],
      );
      const canceled = await tx.query<ExecutionRow>(
        `UPDATE job_executions SET state = 'canceled', message = $2, updated_at = $3
         WHERE job = $1 AND state = 'queued' AND admitted = 0 RETURNING ${EXECUTION_COLUMNS}`,
        [name, reason, at],
      );
      return transitionsFrom(canceled, 'queued');
    });
  }

  async expire(now: string): Promise<ExecutionTransition[]> {
    const at = isoTime(now);
    const expired = await this.db.query<ExecutionRow>(
      `UPDATE job_executions e SET state = 'expired', updated_at = $1, message = 'not started by its deadline, ' || due.deadline
       FROM (
         SELECT x.job, x.device, j.deadline FROM job_executions x JOIN jobs j ON j.name = x.job
         WHERE x.state = 'queued' AND x.attempt = 0 AND j.deadline <= $1
         ORDER BY x.job, x.device FOR UPDATE OF x
       ) due
       WHERE e.job = due.job AND e.device = due.device AND e.state = 'queued' AND e.attempt = 0
       RETURNING ${E_EXECUTION_COLUMNS}`,
      [at],
    );
    return transitionsFrom(expired, 'queued');
  }

  async completeIfDone(name: string, now: string): Promise<boolean> {
    const done = await this.db.query(
      `UPDATE jobs SET phase = 'complete', updated_at = $2 WHERE name = $1 AND phase = 'active'
       AND NOT EXISTS (SELECT 1 FROM job_executions WHERE job = $1 AND state IN ${UNFINISHED_STATES_SQL})
       RETURNING name`,
      [name, isoTime(now)],
    );
    return done.length > 0;
  }

  async delete(name: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [job] = await tx.query('SELECT name FROM jobs WHERE name = $1 FOR UPDATE', [name]);
      if (job === undefined) return false;
      // In device order, as every other writer of a job's executions locks them, before the cascade does.
      await tx.query('SELECT 1 FROM job_executions WHERE job = $1 ORDER BY device FOR UPDATE', [name]);
      // Its executions go with it (ON DELETE CASCADE); its uid stays in job_uids.
      await tx.query('DELETE FROM jobs WHERE name = $1', [name]);
      return true;
    });
  }

  async countByState(): Promise<Record<JobExecutionState, number>> {
    const counts = zeroCounts();
    const rows = await this.db.query<{ state: string; n: number }>(
      'SELECT state, count(*)::bigint AS n FROM job_executions GROUP BY state',
    );
    for (const { state, n } of rows) counts[state as JobExecutionState] = n;
    return counts;
  }
}
