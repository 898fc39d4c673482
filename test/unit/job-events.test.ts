/**
 * The events the hub records for jobs on a device's timeline (broker/jobs/events.ts): one type per
 * transition and a message an operator reads, the job's name as the event's app.
 */
import { describe, expect, it } from 'vitest';
import { queuedEvent, transitionEvent } from '../../broker/jobs/events.js';
import type { ExecutionTransition, StoredExecution, StoredJob } from '../../broker/store/jobs.js';
import type { JobExecutionState, JobSpec } from '../../shared/index.js';

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

function transition(from: JobExecutionState, to: JobExecutionState, execution: Partial<StoredExecution> = {}): ExecutionTransition {
  return {
    job: 'rotate',
    device: 'gw-1',
    from,
    to,
    execution: {
      job: 'rotate',
      device: 'gw-1',
      state: to,
      attempt: 1,
      admitted: true,
      cancelRequested: false,
      updatedAt: '2026-03-02T09:05:00.000Z',
      ...execution,
    },
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

  it('names the attempt, out of how many with retries', () => {
    expect(transitionEvent(job(), transition('queued', 'running'), 'device')).toEqual({
      type: 'job-running',
      app: 'rotate',
      message: 'job rotate running (attempt 1)',
    });
    const retried = job({ retries: { limit: 2 } });
    expect(transitionEvent(retried, transition('running', 'running', { attempt: 2 }), 'device').message).toBe(
      'job rotate running (attempt 2 of 3)',
    );
    expect(
      transitionEvent(
        retried,
        transition('running', 'queued', { attempt: 1, message: 'exited with code 3', nextAttemptAt: '2026-03-02T09:05:10.000Z' }),
        'device',
      ),
    ).toEqual({
      type: 'job-retrying',
      app: 'rotate',
      message: 'job rotate waits to try again at 2026-03-02T09:05:10.000Z (attempt 1 of 3 ended: exited with code 3)',
    });
  });

  it('says how a failed, timed-out or succeeded execution ended', () => {
    expect(transitionEvent(job(), transition('running', 'failed', { exitCode: 2, container: 'task' }), 'device').message).toBe(
      'job rotate failed (attempt 1): container task exited with code 2',
    );
    expect(transitionEvent(job(), transition('running', 'failed', { message: 'image not found' }), 'device').message).toBe(
      'job rotate failed (attempt 1): image not found',
    );
    // The agent's message already says the code: not twice.
    const said = { exitCode: 2, container: 'task', message: 'container task exited with code 2' };
    expect(transitionEvent(job(), transition('running', 'failed', said), 'device').message).toBe(
      'job rotate failed (attempt 1): container task exited with code 2',
    );
    expect(transitionEvent(job(), transition('running', 'failed', { exitCode: 1, message: 'schema locked' }), 'device').message).toBe(
      'job rotate failed (attempt 1): exited with code 1: schema locked',
    );
    expect(transitionEvent(job(), transition('running', 'timed-out'), 'device')).toEqual({
      type: 'job-timed-out',
      app: 'rotate',
      message: 'job rotate timed out after 1h (attempt 1) and was killed',
    });
    expect(transitionEvent(job({ timeout: '30s' }), transition('running', 'timed-out'), 'device').message).toBe(
      'job rotate timed out after 30s (attempt 1) and was killed',
    );
    expect(transitionEvent(job(), transition('running', 'succeeded'), 'device')).toEqual({
      type: 'job-succeeded',
      app: 'rotate',
      message: 'job rotate succeeded (attempt 1)',
    });
    expect(transitionEvent(job(), transition('expired', 'succeeded'), 'device').message).toBe(
      'job rotate succeeded (attempt 1); reported after its deadline had counted it expired',
    );
  });

  it('tells a cancel at the hub from one on the device, and an expiry', () => {
    const stopped = job({}, { phase: 'canceled', reason: 'canceled by alice' });
    expect(transitionEvent(stopped, transition('queued', 'canceled', { attempt: 0, message: 'canceled by alice' }), 'hub')).toEqual({
      type: 'job-canceled',
      app: 'rotate',
      message: 'job rotate canceled before it started: canceled by alice',
    });
    expect(transitionEvent(stopped, transition('running', 'canceled', { message: 'stopped' }), 'device').message).toBe(
      'job rotate canceled on the device (attempt 1): stopped',
    );
    expect(transitionEvent(job(), transition('queued', 'expired', { attempt: 0 }), 'hub')).toEqual({
      type: 'job-expired',
      app: 'rotate',
      message: 'job rotate expired: the device had not started it by its deadline 2026-03-09T09:00:00.000Z',
    });
  });
});
