/**
 * The hub's pure decisions about jobs (broker/jobs/plan.ts): which executions
 * are admitted to their devices' desired documents, when failures abort a job,
 * and what a device's document says of its jobs.
 */
import { describe, expect, it } from 'vitest';
import { abortVerdict, admissions, desiredJob, desiredJobsFor } from '../../broker/jobs/plan.js';
import type { StoredExecution, StoredJob } from '../../broker/store/jobs.js';
import { type JobExecutionState, type JobSpec, MAX_JOBS_PER_DEVICE } from '../../shared/index.js';

const NOW = new Date('2026-03-02T10:00:00Z');

function job(name: string, spec: Partial<JobSpec['spec']> = {}, overrides: Partial<StoredJob> = {}): StoredJob {
  return {
    name,
    uid: `${name}.0123456789abcdef`,
    spec: {
      name,
      scheduling: { selectors: { site: 'lab' } },
      spec: { containers: [{ name: 'task', image: 'busybox:1.36', command: ['true'] }], ...spec },
    },
    phase: 'active',
    createdAt: '2026-03-02T09:00:00.000Z',
    deadline: '2026-03-09T09:00:00.000Z',
    updatedAt: '2026-03-02T09:00:00.000Z',
    ...overrides,
  };
}

function execution(device: string, state: JobExecutionState = 'queued', overrides: Partial<StoredExecution> = {}): StoredExecution {
  return {
    job: 'rotate',
    device,
    state,
    attempt: state === 'queued' ? 0 : 1,
    admitted: state !== 'queued',
    cancelRequested: false,
    updatedAt: '2026-03-02T09:00:00.000Z',
    ...overrides,
  };
}

const everyoneOnline = () => true;

describe('admissions', () => {
  it('admits every queued execution at once without maxConcurrent, offline devices too', () => {
    const executions = [execution('gw-2'), execution('gw-1'), execution('gw-3')];
    expect(admissions(job('rotate'), executions, () => false, NOW)).toEqual(['gw-1', 'gw-2', 'gw-3']);
  });

  it('fills maxConcurrent slots with online devices in id order; offline devices take no slot', () => {
    const limited = job('rotate', { rollout: { maxConcurrent: 2 } });
    const executions = [execution('gw-1'), execution('gw-2'), execution('gw-3'), execution('gw-4')];
    const online = new Set(['gw-2', 'gw-3', 'gw-4']);
    expect(admissions(limited, executions, (id) => online.has(id), NOW)).toEqual(['gw-2', 'gw-3']);
  });

  it('counts admitted unfinished executions as holding slots, and frees one once it is final', () => {
    const one = job('rotate', { rollout: { maxConcurrent: 1 } });
    const running = [execution('gw-1', 'running'), execution('gw-2'), execution('gw-3')];
    expect(admissions(one, running, everyoneOnline, NOW)).toEqual([]);
    // Admitted but not started yet (the device waits for its window): still a slot.
    const waiting = [execution('gw-1', 'queued', { admitted: true }), execution('gw-2')];
    expect(admissions(one, waiting, everyoneOnline, NOW)).toEqual([]);
    const done = [execution('gw-1', 'succeeded'), execution('gw-2'), execution('gw-3')];
    expect(admissions(one, done, everyoneOnline, NOW)).toEqual(['gw-2']);
  });

  it('admits nothing for a job that is not active, or past its deadline', () => {
    const executions = [execution('gw-1')];
    expect(admissions(job('rotate', {}, { phase: 'canceled' }), executions, everyoneOnline, NOW)).toEqual([]);
    expect(admissions(job('rotate', {}, { deadline: '2026-03-02T09:59:59.000Z' }), executions, everyoneOnline, NOW)).toEqual([]);
  });

  it('never admits again what is admitted, final, or asked to stop', () => {
    const executions = [
      execution('gw-1', 'queued', { admitted: true }),
      execution('gw-2', 'expired', { admitted: false }),
      execution('gw-3', 'canceled', { admitted: false }),
      execution('gw-4'),
    ];
    expect(admissions(job('rotate'), executions, everyoneOnline, NOW)).toEqual(['gw-4']);
  });
});

describe('abortVerdict', () => {
  it('aborts at abortAfterFailures, counting failed and timed-out devices, and names them', () => {
    const limited = job('rotate', { rollout: { abortAfterFailures: 2 } });
    const one = [execution('gw-1', 'failed', { exitCode: 3 }), execution('gw-2', 'running'), execution('gw-3')];
    expect(abortVerdict(limited, one)).toBeUndefined();
    const two = [execution('gw-1', 'failed', { exitCode: 3 }), execution('gw-2', 'timed-out'), execution('gw-3')];
    expect(abortVerdict(limited, two)).toEqual({
      failures: 2,
      threshold: 2,
      reason: '2 devices failed: gw-1 (exit code 3), gw-2 (timed out) (the job stops at 2)',
    });
  });

  it('takes a percentage of the job’s devices, rounded up', () => {
    const percent = job('rotate', { rollout: { abortAfterFailurePercent: '10%' } });
    const executions = Array.from({ length: 11 }, (_, i) => execution(`gw-${i}`, i === 0 ? 'failed' : 'running'));
    // 10% of 11 is 1.1: two failures stop it, one does not.
    expect(abortVerdict(percent, executions)).toBeUndefined();
    executions[1] = execution('gw-1', 'failed');
    expect(abortVerdict(percent, executions)?.threshold).toBe(2);
  });

  it('never aborts without a threshold, or a job already stopped', () => {
    const failed = [execution('gw-1', 'failed'), execution('gw-2', 'failed')];
    expect(abortVerdict(job('rotate'), failed)).toBeUndefined();
    expect(abortVerdict(job('rotate', { rollout: { abortAfterFailures: 1 } }, { phase: 'aborted' }), failed)).toBeUndefined();
  });

  it('names the first five failures and counts the rest', () => {
    const limited = job('rotate', { rollout: { abortAfterFailures: 1 } });
    const failed = Array.from({ length: 7 }, (_, i) => execution(`gw-${i}`, 'failed', { exitCode: 1 }));
    expect(abortVerdict(limited, failed)?.reason).toBe(
      '7 devices failed: gw-0 (exit code 1), gw-1 (exit code 1), gw-2 (exit code 1), gw-3 (exit code 1), gw-4 (exit code 1) and 2 more (the job stops at 1)',
    );
  });
});

describe('desiredJob', () => {
  const secrets = (name: string) => (name === 'token' ? Buffer.from('s3cret') : undefined);

  it('carries the execution id, resolved secrets, timeout, retries, deadline and window, restart policy "no"', () => {
    const spec = job('rotate', {
      containers: [{ name: 'task', image: 'busybox:1.36', env: [{ name: 'TOKEN', fromSecret: 'token' }] }],
      timeout: '5m',
      retries: { limit: 2, backoff: '30s' },
      window: { from: '02:00', to: '04:00' },
    });
    expect(desiredJob(spec, execution('gw-1'), secrets)).toEqual({
      name: 'rotate',
      execution: 'rotate.0123456789abcdef',
      containers: [{ name: 'task', image: 'busybox:1.36', env: [{ name: 'TOKEN', value: 's3cret' }], restartPolicy: { name: 'no' } }],
      timeout: '5m',
      retries: { limit: 2, backoff: '30s' },
      deadline: '2026-03-09T09:00:00.000Z',
      window: { from: '02:00', to: '04:00' },
    });
  });

  it('says cancel for an execution the hub asked to stop', () => {
    expect(desiredJob(job('rotate'), execution('gw-1', 'running', { cancelRequested: true }), secrets).cancel).toBe(true);
    expect(desiredJob(job('rotate'), execution('gw-1', 'running'), secrets)).not.toHaveProperty('cancel');
  });
});

describe('desiredJobsFor', () => {
  const noSecrets = () => undefined;

  it('sorts by name, so the same set gives the same document', () => {
    const entries = [
      { job: job('zeta', {}, { createdAt: '2026-03-01T00:00:00.000Z' }), execution: execution('gw-1') },
      { job: job('alpha'), execution: execution('gw-1') },
    ];
    const forward = desiredJobsFor(entries, noSecrets);
    expect(forward.jobs.map((j) => j.name)).toEqual(['alpha', 'zeta']);
    expect(desiredJobsFor([...entries].reverse(), noSecrets)).toEqual(forward);
  });

  it('leaves out a job whose secret is missing, naming it, and keeps the others', () => {
    const broken = job('broken', { containers: [{ name: 'task', image: 'busybox:1.36', env: [{ name: 'K', fromSecret: 'gone' }] }] });
    const { jobs, leftOut } = desiredJobsFor(
      [
        { job: broken, execution: execution('gw-1') },
        { job: job('fine'), execution: execution('gw-1') },
      ],
      noSecrets,
    );
    expect(jobs.map((j) => j.name)).toEqual(['fine']);
    expect(leftOut).toEqual([
      { job: 'broken', reason: 'secret "gone" does not exist', secret: 'gone', path: 'spec.containers[0].env[0].fromSecret' },
    ]);
  });

  it(`keeps the ${MAX_JOBS_PER_DEVICE} oldest jobs, the most a document holds`, () => {
    const entries = Array.from({ length: MAX_JOBS_PER_DEVICE + 2 }, (_, i) => {
      const at = new Date(Date.UTC(2026, 2, 1, 0, i)).toISOString();
      return { job: job(`job-${String(i).padStart(3, '0')}`, {}, { createdAt: at }), execution: execution('gw-1') };
    });
    const { jobs, leftOut } = desiredJobsFor(entries.reverse(), noSecrets);
    expect(jobs).toHaveLength(MAX_JOBS_PER_DEVICE);
    expect(leftOut.map((l) => l.job)).toEqual([`job-0${MAX_JOBS_PER_DEVICE}`, `job-0${MAX_JOBS_PER_DEVICE + 1}`]);
  });
});
