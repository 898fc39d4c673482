/**
 * The events the hub records for jobs on a device's timeline (broker/jobs/events.ts): only its own
 * decisions (a job made, an execution dropped, one expired), each with a message an operator reads
 * and the job's name as the event's app. What devices report is their agents' to record.
 */
import { describe, expect, it } from 'vitest';
import { droppedEvent, expiredEvent, queuedEvent } from '../../broker/jobs/events.js';
import type { StoredExecution, StoredJob } from '../../broker/store/jobs.js';
import type { JobSpec } from '../../shared/index.js';

function job(spec: Partial<JobSpec['spec']> = {}, overrides: Partial<StoredJob> = {}): StoredJob {
  return {
    name: 'rotate',
    uid: 'rotate.0123456789abcdef',
    spec: { name: 'rotate', scheduling: { selectors: {} }, spec: { containers: [{ name: 'task', image: 'busybox:1.36' }], ...spec } },
    phase: 'active',
    createdAt: '2026-03-02T09:00:00.000Z',
    deadline: '2026-03-09T09:00:00.000Z',
    updatedAt: '2026-03-02T09:00:00.000Z',
    ...overrides,
  };
}

function execution(overrides: Partial<StoredExecution>): StoredExecution {
  return {
    job: 'rotate',
    device: 'gw-1',
    state: 'queued',
    attempt: 0,
    admitted: false,
    cancelRequested: false,
    updatedAt: '2026-03-02T09:05:00.000Z',
    ...overrides,
  };
}

describe('job events', () => {
  it('job-queued says when it runs and until when', () => {
    expect(queuedEvent(job())).toEqual({
      type: 'job-queued',
      app: 'rotate',
      message:
        'job rotate queued (execution rotate.0123456789abcdef): runs once the device has it; expires if not started by 2026-03-09T09:00:00.000Z',
    });
    expect(queuedEvent(job({ rollout: { maxConcurrent: 5 }, window: { from: '02:00', to: '04:00' } })).message).toBe(
      'job rotate queued (execution rotate.0123456789abcdef): runs once the device has it, at most 5 devices at a time, inside its window; expires if not started by 2026-03-09T09:00:00.000Z',
    );
  });

  it('a dropped execution says the cancel or the abort that dropped it', () => {
    const canceled = job({}, { phase: 'canceled', reason: 'canceled by alice' });
    expect(droppedEvent(canceled, execution({ state: 'canceled', attempt: 0, message: 'canceled by alice' }))).toEqual({
      type: 'job-canceled',
      app: 'rotate',
      message: 'job rotate canceled before it started: canceled by alice',
    });
    const aborted = job({}, { phase: 'aborted', reason: '1 device failed: gw-2 (exit code 1) (the job stops at 1)' });
    expect(droppedEvent(aborted, execution({ state: 'canceled', attempt: 0 })).message).toBe(
      'job rotate canceled before it started: 1 device failed: gw-2 (exit code 1) (the job stops at 1)',
    );
  });

  it('an expired execution names the deadline', () => {
    expect(expiredEvent(job())).toEqual({
      type: 'job-expired',
      app: 'rotate',
      message: 'job rotate expired: the device had not started it by its deadline 2026-03-09T09:00:00.000Z',
    });
  });
});
