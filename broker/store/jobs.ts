/**
 * Jobs (`flotilla run`, docs/jobs.md): one-off work, one execution per device
 * the job selected when it was made. The hub's record of each execution is
 * what devices reported of it, plus what the hub decided itself: queued ones
 * it dropped (a cancel, an abort) or let expire at the deadline.
 *
 * Invariants:
 * - A job's name is unique among the jobs stored; its `uid` never repeats, also
 *   after a delete, since a device records executions by it and must never take
 *   a new job for one it already ran.
 * - A final execution stays final, with one exception: `expired` is the hub's
 *   guess about a device it did not hear from; a device that started before the
 *   deadline while offline and reports a final state later replaces it.
 * - A report never moves an execution back (running → queued, a lower attempt).
 * - `admitted` says the execution is in its device's desired state: it holds
 *   one of the job's `maxConcurrent` slots until it is final. Only an admitted
 *   execution is ever `cancelRequested`.
 * - A retry moves an execution from `running` back to `queued` at the same
 *   attempt (the attempt last run, waiting for the next); that is forward, a
 *   `running` report of that attempt afterwards is not.
 */
import type { JobExecutionReport, JobExecutionState, JobPhase, JobSpec } from '../../shared/index.js';

export interface StoredJob {
  name: string;
  /** The execution id devices record (`<name>.<random>`): unique for ever. */
  uid: string;
  spec: JobSpec;
  phase: JobPhase;
  /** Why it was canceled or aborted. */
  reason?: string;
  createdAt: string;
  /** When devices that never started it count as `expired`. */
  deadline: string;
  updatedAt: string;
}

export interface StoredExecution {
  job: string;
  device: string;
  state: JobExecutionState;
  attempt: number;
  /** In the device's desired state (holding a concurrency slot until final). */
  admitted: boolean;
  /** The hub asked the device to stop it (cancel, abort); stays in its desired state as `cancel` until final. */
  cancelRequested: boolean;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  container?: string;
  message?: string;
  nextAttemptAt?: string;
  output?: string[];
}

/** One execution's change of state, for events and metrics. */
export interface ExecutionTransition {
  job: string;
  device: string;
  from: JobExecutionState;
  to: JobExecutionState;
  execution: StoredExecution;
}

export interface JobStore {
  /**
   * Stores a new job with a `queued` execution per device. A name in use throws JobExistsError;
   * a uid any job was ever made with, JobUidUsedError (draw another and create again).
   */
  create(job: StoredJob, devices: readonly string[]): Promise<void>;
  get(name: string): Promise<StoredJob | undefined>;
  /** Newest first. */
  list(): Promise<StoredJob[]>;
  /** A job's executions, by device id. */
  executions(name: string): Promise<StoredExecution[]>;
  /** The executions a device's desired state names: admitted and not final (cancel requested ones included), with their job. */
  desiredFor(device: string): Promise<Array<{ job: StoredJob; execution: StoredExecution }>>;
  /**
   * Applies what a device reported of its executions (by execution id = job uid), under the
   * invariants above; reports of unknown or deleted jobs are ignored. Returns what changed state
   * (or attempt: a new attempt that started is a transition `running` → `running`). A report that
   * says what is stored writes nothing; one that only changes details (a message) is written
   * without a transition.
   */
  recordReports(device: string, reports: readonly JobExecutionReport[], now: string): Promise<ExecutionTransition[]>;
  /** Marks executions admitted (now in their devices' desired state). */
  admit(job: string, devices: readonly string[], now: string): Promise<void>;
  /**
   * Ends the job as `canceled` or `aborted` (only from `active`; false otherwise): queued
   * executions not admitted become `canceled` with `reason`, admitted ones not final get
   * `cancelRequested`. Returns the transitions it made.
   */
  stop(name: string, phase: 'canceled' | 'aborted', reason: string, now: string): Promise<ExecutionTransition[] | false>;
  /** Queued executions of jobs past their deadline that never started become `expired`. */
  expire(now: string): Promise<ExecutionTransition[]>;
  /** Sets an active job `complete` once none of its executions is left unfinished; true when it did. */
  completeIfDone(name: string, now: string): Promise<boolean>;
  /** Deletes the job and its executions; false when there was none. Its uid is never given again. */
  delete(name: string): Promise<boolean>;
  /** Executions of every stored job, by state (Prometheus). */
  countByState(): Promise<Record<JobExecutionState, number>>;
}

export class JobExistsError extends Error {
  constructor(readonly job: string) {
    super(`job "${job}" exists: delete it (flotilla job delete ${job}) or choose another name`);
    this.name = 'JobExistsError';
  }
}

/** A uid an earlier job had (devices may have run it under that id): the job must be made under another. */
export class JobUidUsedError extends Error {
  constructor(readonly uid: string) {
    super(`execution id "${uid}" was given to an earlier job: make the job again under a new id`);
    this.name = 'JobUidUsedError';
  }
}
