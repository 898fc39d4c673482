/**
 * The SQLite engine of JobStore (hub.db). Every write is one IMMEDIATE transaction: SQLite's write
 * lock is held from its first read to the commit, so what a write decided from is what it replaces,
 * whichever connection wrote before. A device's report is first decided on a plain read: a report
 * that changes nothing (state reports repeat every few seconds) takes no lock and writes nothing.
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
import type { Db } from './db.js';

export class SqliteJobStore implements JobStore {
  private readonly insertJob;
  private readonly insertUid;
  private readonly insertExecution;
  private readonly selectJob;
  private readonly selectJobs;
  private readonly selectExecutions;
  private readonly selectDesired;
  private readonly selectReported;
  private readonly updateReported;
  private readonly admitOne;
  private readonly stopJob;
  private readonly cancelUnadmitted;
  private readonly requestCancel;
  private readonly expireUnstarted;
  private readonly completeJob;
  private readonly deleteJob;
  private readonly selectCounts;

  constructor(private readonly db: Db) {
    this.insertJob = db.prepare(`INSERT INTO jobs (${JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`);
    this.insertUid = db.prepare('INSERT INTO job_uids (uid, job, created_at) VALUES (?, ?, ?) ON CONFLICT (uid) DO NOTHING');
    this.insertExecution = db.prepare(
      `INSERT INTO job_executions (job, device, state, attempt, admitted, cancel_requested, updated_at)
       VALUES (?, ?, 'queued', 0, 0, 0, ?) ON CONFLICT (job, device) DO NOTHING`,
    );
    this.selectJob = db.prepare<[string], JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE name = ?`);
    this.selectJobs = db.prepare<[], JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, name`);
    this.selectExecutions = db.prepare<[string], ExecutionRow>(
      `SELECT ${EXECUTION_COLUMNS} FROM job_executions WHERE job = ? ORDER BY device`,
    );
    this.selectDesired = db.prepare<[string], JoinedExecutionRow>(
      `SELECT ${JOINED_COLUMNS} FROM job_executions e JOIN jobs j ON j.name = e.job
       WHERE e.device = ? AND e.admitted = 1 AND e.state IN ${UNFINISHED_STATES_SQL}
       ORDER BY j.created_at, j.name`,
    );
    this.selectReported = db.prepare<[string, string], ReportedExecutionRow>(
      `SELECT ${E_EXECUTION_COLUMNS}, j.uid FROM jobs j JOIN job_executions e ON e.job = j.name
       WHERE j.uid = ? AND e.device = ?`,
    );
    this.updateReported = db.prepare(
      `UPDATE job_executions SET ${REPORTED_COLUMNS.map((column) => `${column} = ?`).join(', ')} WHERE job = ? AND device = ?`,
    );
    this.admitOne = db.prepare(
      "UPDATE job_executions SET admitted = 1, updated_at = ? WHERE job = ? AND device = ? AND admitted = 0 AND state = 'queued'",
    );
    this.stopJob = db.prepare("UPDATE jobs SET phase = ?, reason = ?, updated_at = ? WHERE name = ? AND phase = 'active'");
    this.cancelUnadmitted = db.prepare<[string, string, string], ExecutionRow>(
      `UPDATE job_executions SET state = 'canceled', message = ?, updated_at = ?
       WHERE job = ? AND state = 'queued' AND admitted = 0 RETURNING ${EXECUTION_COLUMNS}`,
    );
    this.requestCancel = db.prepare(
      `UPDATE job_executions SET cancel_requested = 1, updated_at = ?
       WHERE job = ? AND admitted = 1 AND cancel_requested = 0 AND state IN ${UNFINISHED_STATES_SQL}`,
    );
    this.expireUnstarted = db.prepare<[string, string], ExecutionRow>(
      `UPDATE job_executions SET state = 'expired', updated_at = ?,
         message = 'not started by its deadline, ' || (SELECT deadline FROM jobs WHERE jobs.name = job_executions.job)
       WHERE state = 'queued' AND attempt = 0 AND job IN (SELECT name FROM jobs WHERE deadline <= ?)
       RETURNING ${EXECUTION_COLUMNS}`,
    );
    this.completeJob = db.prepare(
      `UPDATE jobs SET phase = 'complete', updated_at = ? WHERE name = ? AND phase = 'active'
       AND NOT EXISTS (SELECT 1 FROM job_executions WHERE job = jobs.name AND state IN ${UNFINISHED_STATES_SQL})`,
    );
    this.deleteJob = db.prepare('DELETE FROM jobs WHERE name = ?');
    this.selectCounts = db.prepare<[], { state: string; n: number }>('SELECT state, count(*) AS n FROM job_executions GROUP BY state');
  }

  async create(job: StoredJob, devices: readonly string[]): Promise<void> {
    const row = jobColumns(job);
    this.db
      .transaction(() => {
        // Either unique column may refuse the row: the name in use is what the operator is told first.
        if (this.insertJob.run(...jobValues(row)).changes === 0) {
          throw this.selectJob.get(row.name) ? new JobExistsError(row.name) : new JobUidUsedError(row.uid);
        }
        if (this.insertUid.run(row.uid, row.name, row.created_at).changes === 0) throw new JobUidUsedError(row.uid);
        for (const device of devices) this.insertExecution.run(row.name, device, row.created_at);
      })
      .immediate();
  }

  async get(name: string): Promise<StoredJob | undefined> {
    const row = this.selectJob.get(name);
    return row ? jobFromRow(row) : undefined;
  }

  async list(): Promise<StoredJob[]> {
    return this.selectJobs.all().map(jobFromRow);
  }

  async executions(name: string): Promise<StoredExecution[]> {
    return this.selectExecutions.all(name).map(executionFromRow);
  }

  async desiredFor(device: string): Promise<Array<{ job: StoredJob; execution: StoredExecution }>> {
    return this.selectDesired.all(device).map(joinedFromRow);
  }

  async recordReports(device: string, reports: readonly JobExecutionReport[], now: string): Promise<ExecutionTransition[]> {
    const at = isoTime(now);
    const decide = () => applyReports(this.reported(device, reports), reports, at);
    if (decide().length === 0) return [];
    return this.db
      .transaction(() => {
        const writes = decide();
        for (const { row } of writes) this.updateReported.run(...reportedValues(row), row.job, row.device);
        return writes.flatMap(({ transition }) => (transition ? [transition] : []));
      })
      .immediate();
  }

  async admit(job: string, devices: readonly string[], now: string): Promise<void> {
    const at = isoTime(now);
    this.db
      .transaction(() => {
        for (const device of devices) this.admitOne.run(at, job, device);
      })
      .immediate();
  }

  async stop(name: string, phase: 'canceled' | 'aborted', reason: string, now: string): Promise<ExecutionTransition[] | false> {
    const at = isoTime(now);
    return this.db
      .transaction(() => {
        if (this.stopJob.run(phase, reason, at, name).changes === 0) return false;
        this.requestCancel.run(at, name);
        return transitionsFrom(this.cancelUnadmitted.all(reason, at, name), 'queued');
      })
      .immediate();
  }

  async expire(now: string): Promise<ExecutionTransition[]> {
    const at = isoTime(now);
    return this.db.transaction(() => transitionsFrom(this.expireUnstarted.all(at, at), 'queued')).immediate();
  }

  async completeIfDone(name: string, now: string): Promise<boolean> {
    return this.completeJob.run(isoTime(now), name).changes > 0;
  }

  async delete(name: string): Promise<boolean> {
    // The executions go with it (ON DELETE CASCADE); its uid stays in job_uids.
    return this.deleteJob.run(name).changes > 0;
  }

  async countByState(): Promise<Record<JobExecutionState, number>> {
    const counts = zeroCounts();
    for (const { state, n } of this.selectCounts.all()) counts[state as JobExecutionState] = n;
    return counts;
  }

  /** The device's stored executions the reports name, with their job's uid. */
  private reported(device: string, reports: readonly JobExecutionReport[]): ReportedExecutionRow[] {
    const rows: ReportedExecutionRow[] = [];
    for (const uid of new Set(reports.map((report) => report.execution))) {
      const row = this.selectReported.get(uid, device);
      if (row) rows.push(row);
    }
    return rows;
  }
}
