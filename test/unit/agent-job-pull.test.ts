/**
 * A failed pull of a job's image (agent/jobs/pull-failure.ts, and the
 * runtime's isPermanentPullError): a pull that fails for the link keeps the
 * execution queued and is tried again after a capped backoff, with one event
 * per few minutes, until the deadline; one that no retry mends fails the
 * execution at once with the engine's words. The engine messages are those
 * Docker 20.10 gives for the loopback registry (checked by hand with the
 * API) and for Docker Hub.
 */
import { describe, expect, it } from 'vitest';
import { decideExecution } from '../../agent/jobs/decide.js';
import { afterFailedPull, type FailedPullSituation, PULL_RETRY } from '../../agent/jobs/pull-failure.js';
import type { JobRecord } from '../../agent/jobs/record.js';
import { isPermanentPullError, RuntimeError } from '../../agent/runtime/errors.js';
import type { DesiredJob } from '../../shared/index.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');
const at = (offsetMs: number) => new Date(NOW + offsetMs).toISOString();
const EXECUTION = 'rotate-cert.1a2b3c';
const IMAGE = 'registry.local:5000/tools:1';

const job: DesiredJob = {
  name: 'rotate-cert',
  execution: EXECUTION,
  containers: [{ name: 'main', image: IMAGE }],
  deadline: at(3_600_000),
};

/** As DockerRuntime.pull rejects: the engine's message behind `pull IMAGE: `, its HTTP status when the create call had one. */
function pullError(reason: string, statusCode?: number): RuntimeError {
  return new RuntimeError('pull_failed', `pull ${IMAGE}: ${reason}`, statusCode !== undefined ? { statusCode } : {});
}

const REFUSED = 'Get "http://registry.local:5000/v2/": dial tcp 10.0.0.9:5000: connect: connection refused';
const refused = pullError(REFUSED, 500);
const MANIFEST_UNKNOWN = `manifest for ${IMAGE} not found: manifest unknown: manifest unknown`;

function failed(over: Partial<FailedPullSituation> = {}) {
  return afterFailedPull({
    desired: job,
    record: undefined,
    attempt: 1,
    container: 'main',
    image: IMAGE,
    error: refused,
    now: NOW,
    ...over,
  });
}

describe('which failed pulls no retry mends', () => {
  it.each([
    ['a tag the registry does not have (404)', pullError(MANIFEST_UNKNOWN, 404)],
    ['the same said only in the progress stream', pullError(MANIFEST_UNKNOWN)],
    [
      'a repository Docker Hub denies',
      pullError(
        "pull access denied for nosuch/thing, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
        404,
      ),
    ],
    [
      'credentials refused',
      pullError('Head "https://registry.local:5000/v2/tools/manifests/1": unauthorized: authentication required', 500),
    ],
    ['no credentials given', pullError('Get "https://registry.local:5000/v2/tools/manifests/1": no basic auth credentials', 500)],
    ['a reference the engine cannot parse', pullError('invalid reference format', 400)],
  ])('%s is permanent', (_what, error) => {
    expect(isPermanentPullError(error)).toBe(true);
  });

  it.each([
    ['a registry port nothing listens on', refused],
    [
      'a name that does not resolve on a link without DNS',
      pullError('Get "https://registry.local/v2/": dial tcp: lookup registry.local: no such host', 500),
    ],
    ['a timeout', pullError('Get "https://registry.local/v2/": net/http: request canceled while waiting for connection', 500)],
    ['a download cut off in the stream', pullError('unexpected EOF')],
    ['a rate limit', pullError('toomanyrequests: You have reached your pull rate limit.', 500)],
    ['a local file the engine cannot open', pullError('open /var/lib/docker/tmp/x: permission denied')],
    ['an engine error that is not a pull', new RuntimeError('engine', 'inspect image x: connect ENOENT /var/run/docker.sock')],
    ['a plain error', new Error('manifest unknown')],
  ])('%s is not', (_what, error) => {
    expect(isPermanentPullError(error)).toBe(false);
  });
});

describe('a pull that fails for the link', () => {
  it('keeps the execution queued, no attempt used up, saying why and when it tries again, with one event', () => {
    const outcome = failed();
    const message = `pulling ${IMAGE} failed: ${REFUSED}; trying again at ${at(10_000)}`;
    expect(outcome.record).toEqual({
      execution: EXECUTION,
      job: 'rotate-cert',
      attempt: 0,
      state: 'queued',
      message,
      nextAttemptAt: at(10_000),
      failedPull: { image: IMAGE, reason: REFUSED, count: 1, since: at(0), eventAt: at(0) },
    });
    expect(outcome.event).toEqual({ type: 'job-pull-failed', app: 'rotate-cert', container: 'main', message });
  });

  it('tries again after 10 s, doubling up to 5 min', () => {
    let record: JobRecord | undefined;
    let now = NOW;
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const outcome = failed({ record, now, desired: { ...job, deadline: at(86_400_000) } });
      record = outcome.record;
      const next = Date.parse(record.nextAttemptAt as string);
      delays.push((next - now) / 1000);
      now = next;
    }
    expect(delays).toEqual([10, 20, 40, 80, 160, 300, 300, 300]);
    expect(record?.failedPull?.count).toBe(8);
    expect(record?.attempt).toBe(0);
  });

  it('sends an event at the first failure, then at most one per 5 min, saying how many failed since', () => {
    const desired = { ...job, deadline: at(86_400_000) };
    let record: JobRecord | undefined;
    let now = NOW;
    const events: { at: number; message: string }[] = [];
    while (now < NOW + 15 * 60_000) {
      const outcome = failed({ record, now, desired });
      if (outcome.event) events.push({ at: (now - NOW) / 1000, message: outcome.event.message });
      record = outcome.record;
      now = Date.parse(record.nextAttemptAt as string);
    }
    // Tries at 0, 10, 30, 70, 150, 310, 610, 910 s: the events at 0 s, then the first try 5 min after the last event.
    expect(events.map((e) => e.at)).toEqual([0, 310, 610]);
    expect(events[1]?.message).toBe(`pulling ${IMAGE} failed: ${REFUSED}; trying again at ${at(610_000)} (6 failed pulls since ${at(0)})`);
  });

  it('after a failed attempt waiting for its retry: keeps how that attempt ended, and the next attempt is still the same one', () => {
    const lastEnding = { state: 'failed' as const, exitCode: 3, container: 'main', message: 'container main exited with code 3' };
    const record: JobRecord = {
      execution: EXECUTION,
      job: 'rotate-cert',
      attempt: 1,
      state: 'queued',
      startedAt: at(-60_000),
      finishedAt: at(-30_000),
      nextAttemptAt: at(0),
      lastEnding,
      message: 'attempt 1 of 2 failed: …',
    };
    const outcome = failed({ record, attempt: 2, desired: { ...job, retries: { limit: 1 } } });
    expect(outcome.record).toMatchObject({ attempt: 1, state: 'queued', lastEnding, nextAttemptAt: at(10_000) });
    expect(
      decideExecution({
        execution: EXECUTION,
        desired: job,
        desiredKnown: true,
        record: outcome.record,
        containers: [],
        now: NOW + 10_000,
      }),
    ).toMatchObject({
      action: 'launch',
      attempt: 2,
    });
  });

  it('waits for its next try, then launches the attempt it could not start', () => {
    const { record } = failed();
    const situation = { execution: EXECUTION, desired: job, desiredKnown: true, record, containers: [] };
    expect(decideExecution({ ...situation, now: NOW + 5_000 })).toEqual({ action: 'none', reason: record.message, wakeAt: NOW + 10_000 });
    expect(decideExecution({ ...situation, now: NOW + 10_000 })).toMatchObject({ action: 'launch', attempt: 1 });
  });

  it('expires at its deadline with the last pull error, when it was not tried again before it', () => {
    const { record } = failed();
    const decision = decideExecution({
      execution: EXECUTION,
      desired: job,
      desiredKnown: true,
      record,
      containers: [],
      now: Date.parse(job.deadline),
    });
    const message = `its deadline ${job.deadline} passed before it started; pulling ${IMAGE} failed: ${REFUSED}`;
    expect(decision).toMatchObject({
      action: 'record',
      record: { state: 'expired', attempt: 0, message },
      event: { type: 'job-expired', app: 'rotate-cert', message },
    });
    if (decision.action === 'record') expect(decision.record).not.toHaveProperty('failedPull');
  });

  it('expires at once when its deadline comes before the next try', () => {
    const outcome = failed({ now: Date.parse(job.deadline) - 5_000 });
    const message = `pulling ${IMAGE} failed: ${REFUSED}; its deadline ${job.deadline} comes before another try`;
    expect(outcome.record).toMatchObject({ state: 'expired', attempt: 0, message, finishedAt: at(3_595_000) });
    expect(outcome.record).not.toHaveProperty('nextAttemptAt');
    expect(outcome.event).toEqual({ type: 'job-expired', app: 'rotate-cert', message });
  });

  it('ends as its last attempt did when its deadline comes before the next try', () => {
    const lastEnding = { state: 'timed-out' as const, message: 'killed at its timeout of 1m' };
    const record: JobRecord = { execution: EXECUTION, job: 'rotate-cert', attempt: 1, state: 'queued', lastEnding, nextAttemptAt: at(-1) };
    const outcome = failed({ record, attempt: 2, now: Date.parse(job.deadline) - 5_000 });
    expect(outcome.record).toMatchObject({
      state: 'timed-out',
      attempt: 1,
      message: `killed at its timeout of 1m; no attempt 2: pulling ${IMAGE} failed: ${REFUSED}, and its deadline ${job.deadline} comes before another try`,
    });
    expect(outcome.event).toMatchObject({ type: 'job-timed-out', app: 'rotate-cert' });
  });

  it('starts over with a window: waiting for it drops the passed try and the failed pulls', () => {
    const { record } = failed();
    const desired = { ...job, window: { from: '20:00', to: '21:00', timezone: 'UTC' }, deadline: at(86_400_000) };
    const decision = decideExecution({ execution: EXECUTION, desired, desiredKnown: true, record, containers: [], now: NOW + 10_000 });
    expect(decision).toMatchObject({ action: 'record', record: { state: 'queued', attempt: 0 } });
    if (decision.action === 'record') {
      expect(decision.record.message).toMatch(/^waiting for its window /);
      expect(decision.record).not.toHaveProperty('nextAttemptAt');
      expect(decision.record).not.toHaveProperty('failedPull');
    }
  });
});

describe('a pull no retry mends', () => {
  it("fails the execution at once with the engine's message, whatever its retries", () => {
    const error = pullError(MANIFEST_UNKNOWN, 404);
    const outcome = failed({ error, desired: { ...job, retries: { limit: 3 } } });
    expect(outcome.record).toEqual({
      execution: EXECUTION,
      job: 'rotate-cert',
      attempt: 1,
      state: 'failed',
      container: 'main',
      finishedAt: at(0),
      message: `pull ${IMAGE}: ${MANIFEST_UNKNOWN}`,
    });
    expect(outcome.event).toEqual({
      type: 'job-failed',
      app: 'rotate-cert',
      container: 'main',
      message: `pull ${IMAGE}: ${MANIFEST_UNKNOWN}`,
    });
  });

  it('after transient failures too, dropping what they left', () => {
    const { record } = failed();
    const outcome = failed({ record, error: pullError(MANIFEST_UNKNOWN, 404), now: NOW + 10_000 });
    expect(outcome.record).toMatchObject({ state: 'failed', attempt: 1 });
    expect(outcome.record).not.toHaveProperty('failedPull');
    expect(outcome.record).not.toHaveProperty('nextAttemptAt');
  });

  it('the defaults are those the docs give', () => {
    expect(PULL_RETRY).toEqual({ firstDelayMs: 10_000, maxDelayMs: 300_000, eventIntervalMs: 300_000 });
  });
});
