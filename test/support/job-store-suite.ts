/**
 * One suite for JobStore, run against every engine (test/integration/store-jobs and
 * store-jobs-postgres): what the hub observes of jobs and their executions, and the store's
 * invariants (broker/store/jobs.ts), must not depend on where the rows live. Each engine gives a
 * fresh empty store per test, can open another handle on the same rows (another connection to the
 * file, another replica's pool on the database), and tells whether anything wrote the job tables.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ExecutionTransition, JobExistsError, type JobStore, JobUidUsedError, type StoredJob } from '../../broker/store/jobs.js';
import type { JobExecutionReport } from '../../shared/index.js';
import { Cleanup } from './cleanup.js';

export interface JobStoreHandles {
  /** Another handle on the same rows: a connection, or a pool as each replica has its own. */
  open(): Promise<JobStore>;
  /**
   * A stamp of the job tables as written: another value once anything wrote (or, on PostgreSQL,
   * locked) a row of them. Two equal stamps mean nothing was written in between.
   */
  stamp(): Promise<string>;
}

export interface JobStoreEngine {
  /** A new empty store; what it opens is released by `cleanup`. */
  create(cleanup: Cleanup): Promise<JobStoreHandles>;
}

const T0 = '2026-03-01T00:00:00.000Z';
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();

export function storedJob(name: string, extra: Partial<StoredJob> = {}): StoredJob {
  return {
    name,
    uid: `${name}.0a1b2c3d4e`,
    spec: {
      name,
      scheduling: { selectors: { site: 'lab' } },
      spec: {
        containers: [{ name: 'main', image: 'registry.local/tools:1', command: ['rotate-cert', '--force'] }],
        timeout: '10m',
        retries: { limit: 2, backoff: '5s' },
      },
    },
    phase: 'active',
    createdAt: T0,
    deadline: at(3600),
    updatedAt: T0,
    ...extra,
  };
}

function report(job: StoredJob, state: JobExecutionReport['state'], attempt: number, extra: Partial<JobExecutionReport> = {}) {
  return { name: job.name, execution: job.uid, state, attempt, ...extra } satisfies JobExecutionReport;
}

/** What a stop made, failing the test when it did not stop. */
function stopped(result: ExecutionTransition[] | false): ExecutionTransition[] {
  expect(result, 'the job stopped').not.toBe(false);
  return result as ExecutionTransition[];
}

/** A transition as the suite compares it: the execution's own fields checked apart. */
const moved = (t: ExecutionTransition) => `${t.job}/${t.device} ${t.from}→${t.to}`;

export function jobStoreSuite(engineName: string, engine: JobStoreEngine): void {
  describe(`jobs on ${engineName}`, () => {
    const cleanup = new Cleanup();
    let handles: JobStoreHandles;
    let store: JobStore;

    beforeEach(async () => {
      handles = await engine.create(cleanup);
      store = await handles.open();
    });
    afterEach(() => cleanup.run());

    const byDevice = async (name: string) => new Map((await store.executions(name)).map((e) => [e.device, e]));
    const execution = async (name: string, device: string) => (await byDevice(name)).get(device);

    it('stores a job with a queued execution per device, reads it back whole, and lists the newest first', async () => {
      const job = storedJob('rotate-cert', { createdAt: '2026-03-01T01:00:00+01:00', deadline: '2026-03-08T00:00:00Z' });
      await store.create(job, ['gw-2', 'gw-1', 'Gw-3', 'gw-1']);
      expect(await store.get('rotate-cert')).toEqual({ ...job, createdAt: T0, deadline: '2026-03-08T00:00:00.000Z' });
      expect(await store.get('rotate-cert')).not.toHaveProperty('reason');
      expect(await store.executions('rotate-cert')).toEqual(
        ['Gw-3', 'gw-1', 'gw-2'].map((device) => ({
          job: 'rotate-cert',
          device,
          state: 'queued',
          attempt: 0,
          admitted: false,
          cancelRequested: false,
          updatedAt: T0,
        })),
      );
      await store.create(storedJob('b-later', { createdAt: at(60) }), ['gw-1']);
      await store.create(storedJob('a-later', { createdAt: at(60) }), ['gw-1']);
      await store.create(storedJob('earliest', { createdAt: at(-60) }), []);
      expect((await store.list()).map((j) => j.name)).toEqual(['a-later', 'b-later', 'rotate-cert', 'earliest']);
      expect(await store.executions('earliest')).toEqual([]);
      expect(await store.get('nope')).toBeUndefined();
      expect(await store.executions('nope')).toEqual([]);
    });

    it('refuses a name in use, and a uid any job ever had, also after it is deleted and from a handle opened later', async () => {
      const first = storedJob('migrate-db');
      await store.create(first, ['gw-1']);
      const again = store.create(storedJob('migrate-db', { uid: 'migrate-db.ffff0000' }), ['gw-2']);
      await expect(again).rejects.toBeInstanceOf(JobExistsError);
      await expect(again).rejects.toThrow('job "migrate-db" exists: delete it (flotilla job delete migrate-db) or choose another name');
      expect((await store.executions('migrate-db')).map((e) => e.device)).toEqual(['gw-1']);
      expect((await store.get('migrate-db'))?.uid).toBe(first.uid);

      // Another name with the same uid: refused, and nothing of it is stored.
      await expect(store.create(storedJob('other', { uid: first.uid }), ['gw-1'])).rejects.toBeInstanceOf(JobUidUsedError);
      expect(await store.get('other')).toBeUndefined();

      expect(await store.delete('migrate-db')).toBe(true);
      expect(await store.delete('migrate-db')).toBe(false);
      expect(await store.get('migrate-db')).toBeUndefined();
      expect(await store.executions('migrate-db')).toEqual([]);
      const later = await handles.open();
      const reuse = later.create(storedJob('migrate-db'), ['gw-1']);
      await expect(reuse).rejects.toBeInstanceOf(JobUidUsedError);
      await expect(reuse).rejects.toThrow(`execution id "${first.uid}" was given to an earlier job`);
      expect(await later.get('migrate-db')).toBeUndefined();
      // The name is free again under a new uid.
      await later.create(storedJob('migrate-db', { uid: 'migrate-db.0123abcd' }), ['gw-1']);
      expect((await store.get('migrate-db'))?.uid).toBe('migrate-db.0123abcd');
    });

    it('moves an execution only forward: attempts, retries and final states; a report behind what is stored changes nothing', async () => {
      const job = storedJob('flash');
      await store.create(job, ['gw-1']);
      await store.admit('flash', ['gw-1'], at(1));
      const record = (r: JobExecutionReport, s: number) => store.recordReports('gw-1', [r], at(s));

      const started = await record(report(job, 'running', 1, { startedAt: at(2) }), 3);
      expect(started.map(moved)).toEqual(['flash/gw-1 queued→running']);
      expect(started[0]!.execution).toEqual({
        job: 'flash',
        device: 'gw-1',
        state: 'running',
        attempt: 1,
        admitted: true,
        cancelRequested: false,
        updatedAt: at(3),
        startedAt: at(2),
      });
      // A report from before the start, delayed: not applied.
      expect(await record(report(job, 'queued', 0, { message: 'waiting for its window' }), 4)).toEqual([]);
      expect(await execution('flash', 'gw-1')).toMatchObject({ state: 'running', attempt: 1, updatedAt: at(3) });

      // Attempt 1 failed, a retry pending: queued again at attempt 1, with what the attempt left.
      const retry = report(job, 'queued', 1, {
        startedAt: at(2),
        finishedAt: at(5),
        exitCode: 3,
        container: 'main',
        nextAttemptAt: at(10),
        message: 'attempt 1 failed (exit code 3); attempt 2 at 00:00:10',
        output: ['flashing…', 'error: device busy'],
      });
      expect((await record(retry, 6)).map(moved)).toEqual(['flash/gw-1 running→queued']);
      expect(await execution('flash', 'gw-1')).toEqual({
        job: 'flash',
        device: 'gw-1',
        state: 'queued',
        attempt: 1,
        admitted: true,
        cancelRequested: false,
        updatedAt: at(6),
        startedAt: at(2),
        finishedAt: at(5),
        exitCode: 3,
        container: 'main',
        nextAttemptAt: at(10),
        message: 'attempt 1 failed (exit code 3); attempt 2 at 00:00:10',
        output: ['flashing…', 'error: device busy'],
      });
      // Attempt 1 running again, late: behind the retry.
      expect(await record(report(job, 'running', 1, { startedAt: at(2) }), 7)).toEqual([]);

      // Attempt 2 starts: what attempt 1 left is cleared, as the report no longer says it.
      expect((await record(report(job, 'running', 2, { startedAt: at(10) }), 11)).map(moved)).toEqual(['flash/gw-1 queued→running']);
      expect(await execution('flash', 'gw-1')).toEqual({
        job: 'flash',
        device: 'gw-1',
        state: 'running',
        attempt: 2,
        admitted: true,
        cancelRequested: false,
        updatedAt: at(11),
        startedAt: at(10),
      });
      // Attempt 3 started before attempt 2's retry was heard of: still a transition (a new attempt).
      expect((await record(report(job, 'running', 3, { startedAt: at(20) }), 21)).map(moved)).toEqual(['flash/gw-1 running→running']);
      // A lower attempt, even a final one, is behind.
      expect(await record(report(job, 'failed', 2, { exitCode: 1 }), 22)).toEqual([]);

      const failed = await record(report(job, 'failed', 3, { startedAt: at(20), finishedAt: at(25), exitCode: 3, container: 'main' }), 26);
      expect(failed.map(moved)).toEqual(['flash/gw-1 running→failed']);
      expect(failed[0]!.execution).toMatchObject({ state: 'failed', attempt: 3, exitCode: 3, finishedAt: at(25) });
      // Final stays final: neither an earlier state nor another final state moves it.
      for (const late of [report(job, 'running', 3), report(job, 'succeeded', 3), report(job, 'timed-out', 4), report(job, 'queued', 4)]) {
        expect(await record(late, 30)).toEqual([]);
      }
      expect(await execution('flash', 'gw-1')).toMatchObject({ state: 'failed', attempt: 3, exitCode: 3, updatedAt: at(26) });
    });

    it('replaces `expired` with a final state the device reports later, and with nothing else', async () => {
      const job = storedJob('collect', { deadline: at(60) });
      await store.create(job, ['gw-1', 'gw-2']);
      await store.admit('collect', ['gw-1', 'gw-2'], at(1));
      expect((await store.expire(at(60))).map(moved)).toEqual(['collect/gw-1 queued→expired', 'collect/gw-2 queued→expired']);

      // The device started before the deadline while offline: its running report does not undo the expiry…
      expect(await store.recordReports('gw-1', [report(job, 'running', 1, { startedAt: at(50) })], at(70))).toEqual([]);
      // …nor does its own `expired`…
      expect(await store.recordReports('gw-2', [report(job, 'expired', 0, { message: 'deadline passed' })], at(70))).toEqual([]);
      expect(await execution('collect', 'gw-2')).toMatchObject({ state: 'expired', message: `not started by its deadline, ${at(60)}` });
      // …but its final state does, with what it reports.
      const late = await store.recordReports(
        'gw-1',
        [report(job, 'succeeded', 1, { startedAt: at(50), finishedAt: at(65), exitCode: 0, output: ['bundle written'] })],
        at(80),
      );
      expect(late.map(moved)).toEqual(['collect/gw-1 expired→succeeded']);
      expect(await execution('collect', 'gw-1')).toEqual({
        job: 'collect',
        device: 'gw-1',
        state: 'succeeded',
        attempt: 1,
        admitted: true,
        cancelRequested: false,
        updatedAt: at(80),
        startedAt: at(50),
        finishedAt: at(65),
        exitCode: 0,
        output: ['bundle written'],
      });
      // The replacement is final like any other.
      expect(await store.recordReports('gw-1', [report(job, 'failed', 2, { exitCode: 1 })], at(90))).toEqual([]);
      expect((await store.recordReports('gw-2', [report(job, 'failed', 1, { exitCode: 2 })], at(90))).map(moved)).toEqual([
        'collect/gw-2 expired→failed',
      ]);
    });

    it('writes nothing for a report that says what is stored, and a changed message without a transition', async () => {
      const job = storedJob('nightly', { deadline: at(86_400) });
      await store.create(job, ['gw-1']);
      await store.admit('nightly', ['gw-1'], at(1));
      const waiting = report(job, 'queued', 0, { message: 'waiting for its window mon-fri 02:00–04:00 Europe/Berlin, opens 02:00' });
      expect(await store.recordReports('gw-1', [waiting], at(2))).toEqual([]);
      expect(await execution('nightly', 'gw-1')).toMatchObject({ state: 'queued', message: waiting.message, updatedAt: at(2) });

      // State reports repeat every few seconds: 50 repeats change no row.
      const before = await handles.stamp();
      for (let i = 0; i < 50; i++) expect(await store.recordReports('gw-1', [waiting, waiting], at(3 + i))).toEqual([]);
      expect(await handles.stamp()).toBe(before);
      expect(await execution('nightly', 'gw-1')).toMatchObject({ updatedAt: at(2) });

      // The same with a running execution, its output unchanged.
      const running = report(job, 'running', 1, { startedAt: at(100), output: ['step 1'] });
      expect((await store.recordReports('gw-1', [running], at(101))).map(moved)).toEqual(['nightly/gw-1 queued→running']);
      const afterStart = await handles.stamp();
      expect(afterStart).not.toBe(before);
      for (let i = 0; i < 20; i++) expect(await store.recordReports('gw-1', [running], at(102 + i))).toEqual([]);
      expect(await handles.stamp()).toBe(afterStart);
      // New output lines are written, without a transition.
      expect(await store.recordReports('gw-1', [{ ...running, output: ['step 1', 'step 2'] }], at(130))).toEqual([]);
      expect(await handles.stamp()).not.toBe(afterStart);
      expect(await execution('nightly', 'gw-1')).toMatchObject({ state: 'running', output: ['step 1', 'step 2'], updatedAt: at(130) });
    });

    it('ignores reports of unknown jobs, of deleted jobs, and of executions of other devices', async () => {
      const job = storedJob('probe');
      await store.create(job, ['gw-1']);
      const before = await handles.stamp();
      expect(await store.recordReports('gw-1', [{ ...report(job, 'running', 1), execution: 'probe.ffffffff' }], at(1))).toEqual([]);
      expect(await store.recordReports('gw-9', [report(job, 'running', 1)], at(1))).toEqual([]);
      expect(await store.recordReports('gw-1', [], at(1))).toEqual([]);
      expect(await handles.stamp()).toBe(before);
      // Several executions in one report: the known one applies.
      const other = storedJob('other');
      await store.create(other, ['gw-1']);
      const both = await store.recordReports(
        'gw-1',
        [report(job, 'running', 1), { ...report(other, 'running', 1), execution: 'gone.1' }],
        at(2),
      );
      expect(both.map(moved)).toEqual(['probe/gw-1 queued→running']);
      await store.delete('probe');
      expect(await store.recordReports('gw-1', [report(job, 'succeeded', 1)], at(3))).toEqual([]);
      expect(await store.executions('probe')).toEqual([]);
    });

    it("names in a device's desired state its admitted, unfinished executions, cancel-requested ones too, with their jobs", async () => {
      const older = storedJob('older', { createdAt: at(-10) });
      const newer = storedJob('newer');
      const done = storedJob('done', { createdAt: at(-20) });
      for (const job of [newer, older, done]) await store.create(job, ['gw-1', 'gw-2']);
      expect(await store.desiredFor('gw-1')).toEqual([]);
      await store.admit('older', ['gw-1', 'gw-2', 'gw-9'], at(1));
      await store.admit('newer', ['gw-1'], at(1));
      await store.admit('done', ['gw-1'], at(1));
      await store.recordReports('gw-1', [report(done, 'succeeded', 1)], at(2));
      await store.recordReports('gw-1', [report(older, 'running', 1)], at(2));

      const desired = await store.desiredFor('gw-1');
      expect(desired.map(({ job, execution }) => [job.name, execution.state])).toEqual([
        ['older', 'running'],
        ['newer', 'queued'],
      ]);
      expect(desired[0]!.job).toEqual({ ...older, createdAt: at(-10) });
      expect(desired[0]!.execution).toMatchObject({ device: 'gw-1', admitted: true, cancelRequested: false, updatedAt: at(2) });
      expect((await store.desiredFor('gw-2')).map(({ job }) => job.name)).toEqual(['older']);
      expect(await store.desiredFor('gw-9')).toEqual([]);

      // Canceled: the running one stays, to be told to stop; the one not admitted is dropped.
      expect(stopped(await store.stop('older', 'canceled', 'canceled by admin', at(3))).map(moved)).toEqual([]);
      expect((await store.desiredFor('gw-1')).map(({ job, execution }) => [job.name, execution.cancelRequested])).toEqual([
        ['older', true],
        ['newer', false],
      ]);
      await store.recordReports('gw-1', [report(older, 'canceled', 1, { message: 'stopped' })], at(4));
      expect((await store.desiredFor('gw-1')).map(({ job }) => job.name)).toEqual(['newer']);
      // Admitting a final or already admitted execution changes nothing.
      await store.admit('done', ['gw-1', 'gw-2'], at(5));
      expect(await execution('done', 'gw-1')).toMatchObject({ state: 'succeeded', updatedAt: at(2) });
      expect(await execution('done', 'gw-2')).toMatchObject({ admitted: true, updatedAt: at(5) });
    });

    it('stops a job: queued executions not admitted are canceled at once, admitted ones asked to cancel, final ones kept', async () => {
      const job = storedJob('upgrade-fw');
      const devices = ['gw-1', 'gw-2', 'gw-3', 'gw-4', 'gw-5'];
      await store.create(job, devices);
      await store.admit('upgrade-fw', ['gw-1', 'gw-2', 'gw-3'], at(1));
      await store.recordReports('gw-1', [report(job, 'running', 1)], at(2));
      await store.recordReports('gw-2', [report(job, 'failed', 1, { exitCode: 4 })], at(2));

      const aborted = stopped(await store.stop('upgrade-fw', 'aborted', '1 device failed: gw-2 (exit code 4)', at(10)));
      expect(aborted.map(moved)).toEqual(['upgrade-fw/gw-4 queued→canceled', 'upgrade-fw/gw-5 queued→canceled']);
      expect(aborted[0]!.execution).toEqual({
        job: 'upgrade-fw',
        device: 'gw-4',
        state: 'canceled',
        attempt: 0,
        admitted: false,
        cancelRequested: false,
        updatedAt: at(10),
        message: '1 device failed: gw-2 (exit code 4)',
      });
      expect(await store.get('upgrade-fw')).toMatchObject({
        phase: 'aborted',
        reason: '1 device failed: gw-2 (exit code 4)',
        updatedAt: at(10),
      });
      const after = await byDevice('upgrade-fw');
      expect([...after.values()].map((e) => [e.device, e.state, e.cancelRequested])).toEqual([
        ['gw-1', 'running', true],
        ['gw-2', 'failed', false],
        ['gw-3', 'queued', true],
        ['gw-4', 'canceled', false],
        ['gw-5', 'canceled', false],
      ]);
      expect(after.get('gw-2')).toMatchObject({ updatedAt: at(2) });

      // Only an active job stops: a second stop, a cancel after the abort, an unknown job.
      expect(await store.stop('upgrade-fw', 'canceled', 'canceled by admin', at(11))).toBe(false);
      expect(await store.stop('upgrade-fw', 'aborted', 'again', at(11))).toBe(false);
      expect(await store.stop('nope', 'canceled', 'canceled by admin', at(11))).toBe(false);
      expect(await store.get('upgrade-fw')).toMatchObject({ phase: 'aborted', reason: '1 device failed: gw-2 (exit code 4)' });

      // An admitted one the device never started reports `canceled`; one that finished first keeps its outcome.
      await store.recordReports('gw-3', [report(job, 'canceled', 0)], at(12));
      const last = await store.recordReports('gw-1', [report(job, 'succeeded', 1)], at(12));
      expect(last.map(moved)).toEqual(['upgrade-fw/gw-1 running→succeeded']);
      // Stopped jobs do not become complete.
      expect(await store.completeIfDone('upgrade-fw', at(13))).toBe(false);
      expect((await store.get('upgrade-fw'))?.phase).toBe('aborted');

      const done = storedJob('done');
      await store.create(done, ['gw-1']);
      await store.admit('done', ['gw-1'], at(1));
      await store.recordReports('gw-1', [report(done, 'succeeded', 1)], at(2));
      expect(await store.completeIfDone('done', at(3))).toBe(true);
      expect(await store.stop('done', 'canceled', 'canceled by admin', at(4))).toBe(false);
      expect(await store.get('done')).toMatchObject({ phase: 'complete', updatedAt: at(3) });
      expect(await store.get('done')).not.toHaveProperty('reason');
    });

    it('expires at the deadline the executions that never started, admitted or not, and no other', async () => {
      const soon = storedJob('soon', { deadline: at(60) });
      const later = storedJob('later', { deadline: at(120) });
      await store.create(soon, ['gw-1', 'gw-2', 'gw-3', 'gw-4', 'gw-5']);
      await store.create(later, ['gw-1']);
      await store.admit('soon', ['gw-1', 'gw-2', 'gw-3', 'gw-4'], at(1));
      await store.recordReports('gw-2', [report(soon, 'running', 1)], at(2));
      await store.recordReports('gw-3', [report(soon, 'queued', 1, { nextAttemptAt: at(90), exitCode: 1 })], at(2));
      await store.recordReports('gw-4', [report(soon, 'succeeded', 1)], at(2));

      expect(await store.expire(at(59.999))).toEqual([]);
      const expired = await store.expire(at(60));
      expect(expired.map(moved)).toEqual(['soon/gw-1 queued→expired', 'soon/gw-5 queued→expired']);
      expect(expired[1]!.execution).toEqual({
        job: 'soon',
        device: 'gw-5',
        state: 'expired',
        attempt: 0,
        admitted: false,
        cancelRequested: false,
        updatedAt: at(60),
        message: `not started by its deadline, ${at(60)}`,
      });
      expect(await store.expire(at(61))).toEqual([]);
      expect([...(await byDevice('soon')).values()].map((e) => e.state)).toEqual(['expired', 'running', 'queued', 'succeeded', 'expired']);
      expect((await store.expire(at(3600))).map(moved)).toEqual(['later/gw-1 queued→expired']);
      // The device decides about the ones it started (a retry past the deadline it reports `expired` itself).
      expect((await store.recordReports('gw-3', [report(soon, 'expired', 1)], at(100))).map(moved)).toEqual(['soon/gw-3 queued→expired']);
    });

    it('completes an active job once none of its executions is left unfinished, once', async () => {
      const job = storedJob('diag');
      await store.create(job, ['gw-1', 'gw-2']);
      await store.admit('diag', ['gw-1', 'gw-2'], at(1));
      expect(await store.completeIfDone('diag', at(2))).toBe(false);
      await store.recordReports('gw-1', [report(job, 'succeeded', 1)], at(3));
      await store.recordReports('gw-2', [report(job, 'running', 1)], at(3));
      expect(await store.completeIfDone('diag', at(4))).toBe(false);
      await store.recordReports('gw-2', [report(job, 'timed-out', 1)], at(5));
      const other = await handles.open();
      expect(await Promise.all([store.completeIfDone('diag', at(6)), other.completeIfDone('diag', at(6))])).toEqual(
        expect.arrayContaining([true, false]),
      );
      expect(await store.get('diag')).toMatchObject({ phase: 'complete', updatedAt: at(6) });
      expect(await store.completeIfDone('diag', at(7))).toBe(false);
      expect(await store.completeIfDone('nope', at(7))).toBe(false);
      // A job of no device is done at once.
      await store.create(storedJob('empty'), []);
      expect(await store.completeIfDone('empty', at(8))).toBe(true);
    });

    it('counts the executions of every stored job by state, every state named', async () => {
      const zero = { queued: 0, running: 0, succeeded: 0, failed: 0, 'timed-out': 0, canceled: 0, expired: 0 };
      expect(await store.countByState()).toEqual(zero);
      const a = storedJob('a', { deadline: at(10) });
      const b = storedJob('b');
      await store.create(a, ['gw-1', 'gw-2', 'gw-3']);
      await store.create(b, ['gw-1', 'gw-2', 'gw-3', 'gw-4']);
      await store.admit('b', ['gw-1', 'gw-2', 'gw-3'], at(1));
      await store.recordReports('gw-1', [report(b, 'running', 1)], at(2));
      await store.recordReports('gw-2', [report(b, 'failed', 1)], at(2));
      await store.stop('b', 'canceled', 'canceled by admin', at(3));
      await store.expire(at(10));
      expect(await store.countByState()).toEqual({ ...zero, running: 1, failed: 1, queued: 1, canceled: 1, expired: 3 });
      await store.delete('a');
      expect(await store.countByState()).toEqual({ ...zero, running: 1, failed: 1, queued: 1, canceled: 1 });
    });

    it('makes each transition once when two handles record the same reports at once', async () => {
      const other = await handles.open();
      const devices = Array.from({ length: 12 }, (_, i) => `gw-${String(i).padStart(2, '0')}`);
      const jobs = [storedJob('race-a'), storedJob('race-b')];
      for (const job of jobs) {
        await store.create(job, devices);
        await store.admit(job.name, devices, at(1));
      }
      const steps: Array<(job: StoredJob) => JobExecutionReport> = [
        (job) => report(job, 'running', 1, { startedAt: at(2) }),
        (job) => report(job, 'queued', 1, { exitCode: 1, nextAttemptAt: at(5) }),
        (job) => report(job, 'running', 2, { startedAt: at(5) }),
        (job) => report(job, 'succeeded', 2, { exitCode: 0, finishedAt: at(8) }),
      ];
      const seen: ExecutionTransition[] = [];
      for (const [i, step] of steps.entries()) {
        const results = await Promise.all(
          devices.flatMap((device) =>
            [store, other, store, other].map((handle) => handle.recordReports(device, jobs.map(step), at(10 + i))),
          ),
        );
        seen.push(...results.flat());
      }
      const expected = devices.flatMap((device) =>
        jobs.flatMap((job) =>
          ['queued→running', 'running→queued', 'queued→running', 'running→succeeded'].map((t) => `${job.name}/${device} ${t}`),
        ),
      );
      expect(seen.map(moved).sort()).toEqual(expected.sort());
      expect(await store.countByState()).toMatchObject({ succeeded: devices.length * jobs.length });
    });

    it('stops a job once when two handles stop it at once, while its devices report', async () => {
      const other = await handles.open();
      const devices = Array.from({ length: 16 }, (_, i) => `gw-${String(i).padStart(2, '0')}`);
      const job = storedJob('contested');
      await store.create(job, devices);
      await store.admit('contested', devices.slice(0, 8), at(1));
      const stops = Promise.all([
        store.stop('contested', 'canceled', 'canceled by admin', at(2)),
        other.stop('contested', 'aborted', '2 devices failed', at(2)),
        other.stop('contested', 'canceled', 'canceled by ci', at(2)),
      ]);
      const reports = Promise.all(
        devices.slice(0, 8).map((device, i) => (i % 2 ? store : other).recordReports(device, [report(job, 'running', 1)], at(2))),
      );
      const results = await stops;
      const reported = await reports;
      const won = results.filter((r) => r !== false);
      expect(won).toHaveLength(1);
      const winner = results.findIndex((r) => r !== false);
      const stored = await store.get('contested');
      expect(stored).toMatchObject(
        [
          { phase: 'canceled', reason: 'canceled by admin' },
          { phase: 'aborted', reason: '2 devices failed' },
          { phase: 'canceled', reason: 'canceled by ci' },
        ][winner]!,
      );
      // The executions not admitted were canceled by the one stop, each once; the admitted ones ran and were asked to cancel.
      expect(stopped(won[0]!).map(moved)).toEqual(devices.slice(8).map((device) => `contested/${device} queued→canceled`));
      expect(reported.flat().map(moved).sort()).toEqual(devices.slice(0, 8).map((device) => `contested/${device} queued→running`));
      const executions = await store.executions('contested');
      expect(executions.filter((e) => e.state === 'running' && e.cancelRequested).map((e) => e.device)).toEqual(devices.slice(0, 8));
      expect(executions.filter((e) => e.state === 'canceled').every((e) => e.message === stored?.reason)).toBe(true);
    });

    it('expires each execution once when two handles expire at once, while a device reports its start', async () => {
      const other = await handles.open();
      const devices = Array.from({ length: 10 }, (_, i) => `gw-${i}`);
      const job = storedJob('deadline-race', { deadline: at(30) });
      await store.create(job, devices);
      await store.admit('deadline-race', devices, at(1));
      const [mine, theirs, started] = await Promise.all([
        store.expire(at(30)),
        other.expire(at(30)),
        store.recordReports('gw-3', [report(job, 'running', 1)], at(30)),
      ]);
      const expired = [...mine, ...theirs].map(moved).sort();
      const gw3 = started.length === 1 ? [] : ['deadline-race/gw-3 queued→expired'];
      expect(expired).toEqual(
        [...devices.filter((d) => d !== 'gw-3').map((device) => `deadline-race/${device} queued→expired`), ...gw3].sort(),
      );
      expect((await execution('deadline-race', 'gw-3'))?.state).toBe(started.length === 1 ? 'running' : 'expired');
    });
  });
}
