/**
 * What the API returns for jobs (shared/api/results.ts JobSummary, JobDetail),
 * built from store rows by pure functions: the same shapes over HTTP and MQTT.
 */
import {
  JOB_EXECUTION_STATES,
  JOB_PHASES,
  type JobCounts,
  type JobDetail,
  type JobExecutionView,
  type JobPhase,
  type JobSummary,
} from '../../shared/index.js';
import type { StoredExecution, StoredJob } from '../store/jobs.js';

/** Every state, 0 where no execution is in it, and the total. */
export function jobCounts(executions: readonly StoredExecution[]): JobCounts {
  const counts = Object.fromEntries(JOB_EXECUTION_STATES.map((state) => [state, 0])) as JobCounts;
  for (const e of executions) counts[e.state]++;
  counts.total = executions.length;
  return counts;
}

export function jobSummary(job: StoredJob, executions: readonly StoredExecution[]): JobSummary {
  return {
    name: job.name,
    phase: job.phase,
    counts: jobCounts(executions),
    createdAt: job.createdAt,
    deadline: job.deadline,
    ...(job.reason !== undefined ? { reason: job.reason } : {}),
  };
}

export function jobDetail(job: StoredJob, executions: readonly StoredExecution[]): JobDetail {
  return {
    ...jobSummary(job, executions),
    spec: job.spec,
    executions: [...executions].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0)).map(executionView),
  };
}

/** What an operator sees of one execution: the store's bookkeeping (admitted, cancel asked) stays inside the hub. */
export function executionView(e: StoredExecution): JobExecutionView {
  return {
    device: e.device,
    state: e.state,
    attempt: e.attempt,
    updatedAt: e.updatedAt,
    ...(e.startedAt !== undefined ? { startedAt: e.startedAt } : {}),
    ...(e.finishedAt !== undefined ? { finishedAt: e.finishedAt } : {}),
    ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
    ...(e.container !== undefined ? { container: e.container } : {}),
    ...(e.message !== undefined ? { message: e.message } : {}),
    ...(e.nextAttemptAt !== undefined ? { nextAttemptAt: e.nextAttemptAt } : {}),
    ...(e.output !== undefined ? { output: e.output } : {}),
  };
}

/** Jobs per phase, every phase present (Prometheus `flotilla_jobs{phase}`). */
export function phaseCounts(jobs: readonly Pick<StoredJob, 'phase'>[]): Record<JobPhase, number> {
  const counts = Object.fromEntries(JOB_PHASES.map((phase) => [phase, 0])) as Record<JobPhase, number>;
  for (const job of jobs) counts[job.phase]++;
  return counts;
}
