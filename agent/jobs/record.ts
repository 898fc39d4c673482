/**
 * What the agent remembers of one job execution, beyond what Docker labels
 * say: the attempt it started last and how it went. Written durably before
 * an attempt's first container is created (job-store.ts), so an agent that
 * restarts never starts that attempt again: it finds its containers by their
 * labels, or reports them gone.
 */
import type { JobExecutionState } from '../../shared/index.js';

/** How an attempt ends; `succeeded` only when every container exited 0. */
export interface AttemptEnding {
  state: 'succeeded' | 'failed' | 'timed-out' | 'canceled';
  message: string;
  exitCode?: number;
  /** The container that decided it (the first to exit non-zero, the one that could not start). */
  container?: string;
}

export interface JobRecord {
  execution: string;
  /** The job's name (events and log lines carry it as `app`). */
  job: string;
  /** The attempt started last (0: none yet). */
  attempt: number;
  /**
   * `queued`: no attempt runs (none yet, or the last one ended and another
   * may follow); `running`: attempt `attempt` was started, so its containers
   * may exist; then a final state, never left.
   */
  state: JobExecutionState;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  container?: string;
  message?: string;
  output?: string[];
  /** While queued after an attempt: when the next may start. */
  nextAttemptAt?: string;
  /**
   * While running: how the attempt ends, decided before its containers are
   * stopped (a timeout, a cancel, another container's failure), so the exit
   * code a stop causes is not taken for the outcome.
   */
  ending?: AttemptEnding;
  /** While queued after an attempt: how that attempt ended (the final state if no other one starts). */
  lastEnding?: AttemptEnding;
  /** While queued after pulls that failed for the link (pull-failure.ts): the last of them; `nextAttemptAt` is the next try. */
  failedPull?: FailedPull;
}

/** Pulls of an execution's images that failed in a row without using up an attempt. */
export interface FailedPull {
  image: string;
  /** The engine's reason, the last time. */
  reason: string;
  /** Failed pulls in a row (the backoff doubles with each). */
  count: number;
  /** When the first of them failed. */
  since: string;
  /** When the last `job-pull-failed` event went out. */
  eventAt: string;
}
