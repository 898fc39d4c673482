/**
 * The job execution's decision (agent/jobs/decide.ts): every branch, with
 * the record it leaves and the event an operator sees.
 */
import { describe, expect, it } from 'vitest';
import { decideExecution, type ExecutionSituation, endAttempt } from '../../agent/jobs/decide.js';
import type { JobRecord } from '../../agent/jobs/record.js';
import type { JobContainer } from '../../agent/runtime/runtime.js';
import type { DesiredJob } from '../../shared/index.js';

const NOW = Date.parse('2026-12-07T12:00:00Z'); // a Monday
const at = (offsetMs: number) => new Date(NOW + offsetMs).toISOString();
const EXECUTION = 'rotate-cert.1a2b3c';

const job: DesiredJob = {
  name: 'rotate-cert',
  execution: EXECUTION,
  containers: [{ name: 'main', image: 'registry.local/tools:1' }],
  deadline: at(3_600_000),
};

function situation(over: Partial<ExecutionSituation> = {}): ExecutionSituation {
  return { execution: EXECUTION, desired: job, desiredKnown: true, record: undefined, containers: [], now: NOW, ...over };
}

function running(attempt = 1, over: Partial<JobRecord> = {}): JobRecord {
  return { execution: EXECUTION, job: 'rotate-cert', attempt, state: 'running', startedAt: at(-60_000), ...over };
}

function container(over: Partial<JobContainer> = {}): JobContainer {
  return {
    id: `id-${over.container ?? 'main'}-${over.attempt ?? 1}`,
    dockerName: 'job_x',
    job: 'rotate-cert',
    execution: EXECUTION,
    attempt: 1,
    container: 'main',
    image: 'registry.local/tools:1',
    state: 'running',
    startedAt: at(-60_000),
    ...over,
  };
}

function exited(code: number, over: Partial<JobContainer> = {}): JobContainer {
  return container({ state: 'exited', exitCode: code, finishedAt: at(-1_000), ...over });
}

describe('a queued execution', () => {
  it('is launched as attempt 1 when nothing is known of it', () => {
    expect(decideExecution(situation())).toEqual({ action: 'launch', attempt: 1, reason: 'not started yet' });
  });

  it('waits for its window while it is closed, once recorded, and wakes when it opens', () => {
    // Monday 12:00 UTC = 13:00 in Berlin: the window 02:00–04:00 opens on Tuesday 01:00 UTC.
    const desired = {
      ...job,
      window: { days: ['mon-fri'], from: '02:00', to: '04:00', timezone: 'Europe/Berlin' },
      deadline: at(7 * 86_400_000),
    };
    const decision = decideExecution(situation({ desired }));
    const message = 'waiting for its window mon-fri 02:00–04:00 Europe/Berlin, opens 2026-12-08T01:00:00.000Z';
    expect(decision).toEqual({
      action: 'record',
      record: { execution: EXECUTION, job: 'rotate-cert', attempt: 0, state: 'queued', message },
      event: { type: 'job-waiting', app: 'rotate-cert', message },
      reason: message,
      wakeAt: Date.parse('2026-12-08T01:00:00Z'),
    });
    // Recorded already: nothing new to say, only the wake-up.
    const again = decideExecution(situation({ desired, record: decision.action === 'record' ? decision.record : undefined }));
    expect(again).toEqual({ action: 'none', reason: message, wakeAt: Date.parse('2026-12-08T01:00:00Z') });
  });

  it('starts inside its window', () => {
    const desired = { ...job, window: { from: '11:00', to: '13:00', timezone: 'UTC' } };
    expect(decideExecution(situation({ desired }))).toMatchObject({ action: 'launch', attempt: 1 });
  });

  it('wakes at its deadline when the window opens after it', () => {
    const desired = { ...job, window: { from: '20:00', to: '21:00', timezone: 'UTC' } };
    expect(decideExecution(situation({ desired }))).toMatchObject({ action: 'record', wakeAt: Date.parse(job.deadline) });
  });

  it('expires once its deadline passed before it started', () => {
    const decision = decideExecution(situation({ now: Date.parse(job.deadline) }));
    expect(decision).toMatchObject({
      action: 'record',
      record: { state: 'expired', attempt: 0, finishedAt: job.deadline, message: `its deadline ${job.deadline} passed before it started` },
      event: { type: 'job-expired', app: 'rotate-cert', message: `its deadline ${job.deadline} passed before it started` },
    });
  });

  it('waits for a retry, then launches the next attempt', () => {
    const record: JobRecord = {
      execution: EXECUTION,
      job: 'rotate-cert',
      attempt: 1,
      state: 'queued',
      nextAttemptAt: at(10_000),
      lastEnding: { state: 'failed', exitCode: 3, container: 'main', message: 'container main exited with code 3' },
      message: 'attempt 1 of 2 failed: …',
    };
    expect(decideExecution(situation({ record }))).toEqual({
      action: 'none',
      reason: `attempt 2 starts at ${at(10_000)}`,
      wakeAt: NOW + 10_000,
    });
    expect(decideExecution(situation({ record, now: NOW + 10_000 }))).toMatchObject({ action: 'launch', attempt: 2 });
  });

  it('ends as its last attempt did when the deadline passes during the backoff', () => {
    const record: JobRecord = {
      execution: EXECUTION,
      job: 'rotate-cert',
      attempt: 1,
      state: 'queued',
      exitCode: 3,
      container: 'main',
      nextAttemptAt: at(10_000),
      lastEnding: { state: 'failed', exitCode: 3, container: 'main', message: 'container main exited with code 3' },
    };
    const decision = decideExecution(situation({ record, now: Date.parse(job.deadline) }));
    expect(decision).toMatchObject({
      action: 'record',
      record: { state: 'failed', attempt: 1, exitCode: 3, container: 'main' },
      event: { type: 'job-failed', container: 'main' },
    });
    if (decision.action !== 'record') throw new Error('unreachable');
    expect(decision.record.message).toBe(`container main exited with code 3; no attempt 2: its deadline ${job.deadline} passed first`);
    expect(decision.record.nextAttemptAt).toBeUndefined();
  });
});

describe('a running attempt', () => {
  it('keeps watching a running container (adopted after a restart), waking at its timeout counted from StartedAt', () => {
    const desired = { ...job, timeout: '5m' };
    expect(decideExecution(situation({ desired, record: running(), containers: [container()] }))).toEqual({
      action: 'none',
      reason: `attempt 1 runs (killed at ${at(240_000)} if still running)`,
      wakeAt: NOW + 240_000,
    });
  });

  it('succeeds when every container exited 0, with their output read', () => {
    const decision = decideExecution(situation({ record: running(), containers: [exited(0)] }));
    expect(decision).toMatchObject({
      action: 'finish',
      outputOf: ['id-main-1'],
      record: { state: 'succeeded', attempt: 1, exitCode: 0, finishedAt: at(-1_000), message: 'exited 0' },
      event: { type: 'job-succeeded', app: 'rotate-cert', message: 'exited 0' },
    });
  });

  it("stamps the end of an attempt whose container ended an hour before the agent looked with the engine's time, not the look's", () => {
    const long = at(-3_600_000);
    const decision = decideExecution(
      situation({ record: running(), containers: [exited(0, { finishedAt: '2026-12-07T11:00:00.123456789Z' })] }),
    );
    expect(decision).toMatchObject({
      action: 'finish',
      record: { state: 'succeeded', finishedAt: '2026-12-07T11:00:00.123Z' },
      event: { type: 'job-succeeded', ts: '2026-12-07T11:00:00.123Z' },
    });
    // A retry's event too: it happened when the container ended.
    const desired = { ...job, retries: { limit: 1, backoff: '10s' } };
    const retrying = decideExecution(situation({ desired, record: running(), containers: [exited(1, { finishedAt: long })] }));
    expect(retrying).toMatchObject({
      action: 'finish',
      record: { state: 'queued', finishedAt: long },
      event: { type: 'job-retrying', ts: long },
    });
    // Gone without a trace: the engine has no time, and the event is stamped when it is sent.
    const gone = decideExecution(situation({ record: running() }));
    expect(gone).toMatchObject({ action: 'finish', record: { state: 'failed', finishedAt: at(0) } });
    if (gone.action !== 'finish') throw new Error('unreachable');
    expect(gone.event.ts).toBeUndefined();
  });

  it('fails with the exit code of an adopted container that exited non-zero', () => {
    const decision = decideExecution(situation({ record: running(), containers: [exited(3)] }));
    expect(decision).toMatchObject({
      action: 'finish',
      record: { state: 'failed', exitCode: 3, container: 'main', message: 'container main exited with code 3' },
      event: { type: 'job-failed', container: 'main' },
    });
  });

  it('fails, without running it again, an attempt whose container is gone', () => {
    const decision = decideExecution(situation({ record: running() }));
    expect(decision).toMatchObject({ action: 'finish', record: { state: 'failed', attempt: 1, container: 'main' } });
    if (decision.action !== 'finish') throw new Error('unreachable');
    expect(decision.record.message).toMatch(/^container main of attempt 1 is gone .*: the attempt is not run again$/);
  });

  it('stops the other containers when one exits non-zero, then fails with the first', () => {
    const desired = { ...job, containers: [...job.containers, { name: 'side', image: 'registry.local/tools:1' }] };
    const side = container({ container: 'side', id: 'id-side' });
    const decision = decideExecution(situation({ desired, record: running(), containers: [exited(2), side] }));
    expect(decision).toMatchObject({
      action: 'stop',
      ids: ['id-side'],
      kill: false,
      record: { state: 'running', ending: { state: 'failed', exitCode: 2, container: 'main' } },
    });
    if (decision.action !== 'stop' || !decision.record) throw new Error('unreachable');
    // Stopped, `side` exits 137: the outcome decided before the stop stands.
    const after = decideExecution(
      situation({ desired, record: decision.record, containers: [exited(2), exited(137, { container: 'side', id: 'id-side' })] }),
    );
    expect(after).toMatchObject({
      action: 'finish',
      record: { state: 'failed', exitCode: 2, container: 'main' },
      outputOf: ['id-main-1', 'id-side'],
    });
  });

  it('kills it past its timeout, then reports it timed-out', () => {
    const desired = { ...job, timeout: '30s' };
    const decision = decideExecution(situation({ desired, record: running(), containers: [container()] }));
    expect(decision).toMatchObject({
      action: 'stop',
      kill: true,
      ids: ['id-main-1'],
      record: { ending: { state: 'timed-out', message: 'killed at its timeout of 30s' } },
    });
    if (decision.action !== 'stop' || !decision.record) throw new Error('unreachable');
    const after = decideExecution(situation({ desired, record: decision.record, containers: [exited(137)] }));
    expect(after).toMatchObject({
      action: 'finish',
      record: { state: 'timed-out', message: 'killed at its timeout of 30s' },
      event: { type: 'job-timed-out' },
    });
  });

  it('starts containers created but never started (a launch cut short), and fails one the engine could not start', () => {
    const { startedAt: _never, ...created } = container({ state: 'created' });
    expect(decideExecution(situation({ record: running(), containers: [created] }))).toMatchObject({ action: 'start', ids: ['id-main-1'] });
    const refused = {
      ...created,
      startError: 'error gathering device information while adding custom device "/dev/ttyX": no such file or directory',
    };
    expect(decideExecution(situation({ record: running(), containers: [refused] }))).toMatchObject({
      action: 'finish',
      record: { state: 'failed', container: 'main', message: `container main could not start: ${refused.startError}` },
    });
  });

  it('adopts the containers of an attempt its record does not know', () => {
    const queued: JobRecord = { execution: EXECUTION, job: 'rotate-cert', attempt: 1, state: 'queued', nextAttemptAt: at(-1) };
    const decision = decideExecution(situation({ record: queued, containers: [container({ attempt: 2, id: 'id-2' })] }));
    expect(decision).toMatchObject({ action: 'record', record: { state: 'running', attempt: 2, startedAt: at(-60_000) } });
    // Without any record at all too (the file lost).
    expect(decideExecution(situation({ containers: [exited(0)] }))).toMatchObject({
      action: 'record',
      record: { state: 'running', attempt: 1 },
    });
  });
});

describe('cancel, and executions no longer desired', () => {
  it('cancels a queued execution at once', () => {
    expect(decideExecution(situation({ desired: { ...job, cancel: true } }))).toMatchObject({
      action: 'record',
      record: { state: 'canceled', attempt: 0, message: 'canceled at the hub, before it started' },
      event: { type: 'job-canceled', message: 'canceled at the hub, before it started' },
    });
  });

  it('stops a running attempt gracefully, then reports it canceled', () => {
    const desired = { ...job, cancel: true as const };
    const decision = decideExecution(situation({ desired, record: running(), containers: [container()] }));
    expect(decision).toMatchObject({
      action: 'stop',
      kill: false,
      record: { ending: { state: 'canceled', message: 'attempt 1 stopped: canceled at the hub' } },
    });
    if (decision.action !== 'stop' || !decision.record) throw new Error('unreachable');
    expect(decideExecution(situation({ desired, record: decision.record, containers: [exited(143)] }))).toMatchObject({
      action: 'finish',
      record: { state: 'canceled' },
      event: { type: 'job-canceled' },
    });
  });

  it('does not retry a canceled attempt', () => {
    const desired = { ...job, cancel: true as const, retries: { limit: 3 } };
    const { record } = endAttempt(desired, running(), { state: 'failed', exitCode: 1, message: 'x' }, NOW);
    expect(record.state).toBe('failed');
  });

  it('stops one the desired state no longer names (deleted at the hub), but only once a desired state is known', () => {
    const containers = [container()];
    expect(decideExecution(situation({ desired: undefined, desiredKnown: false, record: running(), containers }))).toMatchObject({
      action: 'none',
    });
    expect(decideExecution(situation({ desired: undefined, record: running(), containers }))).toMatchObject({
      action: 'stop',
      record: {
        ending: {
          state: 'canceled',
          message: 'attempt 1 stopped: no longer in the desired state (the job was deleted or canceled at the hub)',
        },
      },
    });
  });

  it('keeps a final execution and its containers while desired names it, then removes the containers, and never runs it again', () => {
    const done: JobRecord = { ...running(), state: 'succeeded', exitCode: 0, finishedAt: at(-1) };
    expect(decideExecution(situation({ record: done, containers: [exited(0)] }))).toEqual({ action: 'none', reason: 'succeeded' });
    expect(decideExecution(situation({ desired: undefined, record: done, containers: [exited(0)] }))).toMatchObject({
      action: 'remove',
      ids: ['id-main-1'],
    });
    expect(decideExecution(situation({ desired: undefined, record: done }))).toEqual({ action: 'none', reason: 'succeeded' });
    // A stale document naming it again.
    expect(decideExecution(situation({ record: done }))).toEqual({ action: 'none', reason: 'succeeded' });
  });

  it('stops a container of a final execution that runs again', () => {
    const done: JobRecord = { ...running(), state: 'failed', exitCode: 1 };
    expect(decideExecution(situation({ record: done, containers: [container()] }))).toMatchObject({
      action: 'stop',
      kill: false,
      ids: ['id-main-1'],
    });
  });
});

describe('endAttempt: retries', () => {
  const retrying = { ...job, retries: { limit: 1, backoff: '5s' } };

  it('queues the next attempt after the backoff, doubled per attempt', () => {
    const { record, event } = endAttempt(
      retrying,
      running(1),
      { state: 'failed', exitCode: 3, container: 'main', message: 'container main exited with code 3' },
      NOW,
    );
    expect(record).toMatchObject({ state: 'queued', attempt: 1, exitCode: 3, container: 'main', nextAttemptAt: at(5_000) });
    expect(record.message).toBe(`attempt 1 of 2 failed: container main exited with code 3; attempt 2 at ${at(5_000)}`);
    expect(event).toEqual({ type: 'job-retrying', app: 'rotate-cert', container: 'main', message: record.message });
    const third = endAttempt({ ...job, retries: { limit: 3, backoff: '5s' } }, running(2), { state: 'timed-out', message: 'killed' }, NOW);
    expect(third.record.nextAttemptAt).toBe(at(10_000));
  });

  it('is final once the attempts are used up, naming the attempt', () => {
    const { record, event } = endAttempt(
      retrying,
      running(2),
      { state: 'failed', exitCode: 3, container: 'main', message: 'container main exited with code 3' },
      NOW,
    );
    expect(record).toMatchObject({ state: 'failed', attempt: 2, exitCode: 3, message: 'container main exited with code 3 (attempt 2)' });
    expect(event).toMatchObject({ type: 'job-failed', container: 'main' });
  });

  it('retries only the outcomes `on` names', () => {
    const onTimeout = { ...job, retries: { limit: 2, on: ['timed-out' as const] } };
    expect(endAttempt(onTimeout, running(1), { state: 'failed', exitCode: 1, message: 'x' }, NOW).record.state).toBe('failed');
    expect(endAttempt(onTimeout, running(1), { state: 'timed-out', message: 'x' }, NOW).record.state).toBe('queued');
  });

  it('is final when the next attempt would start after the deadline', () => {
    const { record } = endAttempt(
      { ...retrying, deadline: at(3_000) },
      running(1),
      { state: 'failed', exitCode: 3, message: 'exit 3' },
      NOW,
    );
    expect(record).toMatchObject({ state: 'failed', message: `exit 3; no attempt 2: its deadline ${at(3_000)} comes first` });
  });
});
