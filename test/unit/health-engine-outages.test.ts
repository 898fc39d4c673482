/**
 * The health gate across engine outages: an exit while the engine was away
 * is the engine's, not the version's, and the time it was away does not count
 * against the health timeout; an exit or a failed check while the engine
 * stayed up still fails the gate.
 */
import { describe, expect, it } from 'vitest';
import { awayDuring, EngineOutages, outageAt } from '../../agent/health/engine-outages.js';
import { healthVerdict } from '../../agent/health/verdict.js';
import { candidate, plain, STARTED, withHttp } from '../support/health-fixtures.js';

const started = STARTED;
const at = (seconds: number) => started + seconds * 1000;
const iso = (seconds: number) => new Date(at(seconds)).toISOString();
const policy = { healthTimeoutMs: 60_000, minReadyMs: 30_000 };

const container = candidate;

/** Away from the look at 10 s until the look at 50 s. */
const outage = [{ from: at(10), to: at(50) }];

describe('an exit while the engine was away', () => {
  const exited = (finishedAtSeconds: number) => container({ state: 'exited', exitCode: 143, finishedAt: iso(finishedAtSeconds) });

  it('is not a failure: the trial waits for the container to run again', () => {
    expect(healthVerdict(exited(12), plain, policy, undefined, at(51), outage)).toEqual({
      status: 'pending',
      reason: `container web was stopped while the engine went away (after ${iso(10)}); its trial resumes when it runs again`,
      stoppedByEngine: true,
    });
    // Still away (no look has found it back yet): the same.
    expect(healthVerdict(exited(12), plain, policy, undefined, at(20), [{ from: at(10) }]).status).toBe('pending');
  });

  it('fails the gate when it happened while the engine was up, before or after the outage', () => {
    expect(healthVerdict(exited(8), plain, policy, undefined, at(51), outage)).toEqual({
      status: 'unhealthy',
      reason: 'container web exited with code 143',
    });
    expect(healthVerdict(exited(55), plain, policy, undefined, at(56), outage).status).toBe('unhealthy');
    expect(healthVerdict(exited(12), plain, policy, undefined, at(51), []).status).toBe('unhealthy');
    // An exit the runtime gave no time for is judged as before.
    expect(healthVerdict(container({ state: 'exited', exitCode: 1 }), plain, policy, undefined, at(51), outage).status).toBe('unhealthy');
  });

  it('a restart by the container itself still fails the gate', () => {
    expect(healthVerdict(container({ restartCount: 1 }), plain, policy, undefined, at(51), outage).status).toBe('unhealthy');
  });
});

describe('the health timeout, without the time the engine was away', () => {
  const failing = { ok: false, detail: 'GET … answered 503' };

  it('gives a check that keeps failing its full timeout of time with the engine there', () => {
    // 70 s since the start, 40 of them away: 30 s of 60.
    expect(healthVerdict(container(), withHttp, policy, failing, at(70), outage)).toEqual({
      status: 'pending',
      reason: 'waiting for health check (30s of 60s): GET … answered 503',
    });
    expect(healthVerdict(container(), withHttp, policy, failing, at(101), outage)).toEqual({
      status: 'unhealthy',
      reason: 'health check failed for 61s of 60s: GET … answered 503',
    });
    // Without the outage the same check had failed at 61 s.
    expect(healthVerdict(container(), withHttp, policy, failing, at(61), []).status).toBe('unhealthy');
  });

  it('does not count the outage towards minReadySeconds either, nor an outage before the start', () => {
    expect(healthVerdict(container(), plain, policy, undefined, at(60), outage)).toEqual({
      status: 'pending',
      reason: 'running for 20s of 30s without a restart',
    });
    expect(healthVerdict(container({ startedAt: iso(55) }), plain, policy, undefined, at(85), outage).status).toBe('healthy');
  });
});

describe('outages as the reconciler records them', () => {
  it('spans from the last look that found the engine up to the first that found it back', () => {
    const outages = new EngineOutages();
    outages.seenUp(at(5));
    outages.seenUp(at(10));
    outages.wentAway(at(12));
    outages.wentAway(at(20)); // still away: the same outage
    expect(outages.list).toEqual([{ from: at(10) }]);
    expect(outages.away).toBe(true);
    outages.seenUp(at(50));
    expect(outages.list).toEqual(outage);
    expect(outages.away).toBe(false);
    outages.seenUp(at(51));
    outages.wentAway(at(60));
    expect(outages.list).toEqual([...outage, { from: at(51) }]);
  });

  it('starts at the first look when the engine was never seen up, and keeps only the last few', () => {
    const outages = new EngineOutages();
    outages.wentAway(at(3));
    expect(outages.list).toEqual([{ from: at(3) }]);
    for (let i = 1; i <= 20; i++) {
      outages.seenUp(at(i * 10));
      outages.wentAway(at(i * 10 + 1));
    }
    expect(outages.list).toHaveLength(8);
    expect(outages.list.at(-1)).toEqual({ from: at(200) });
  });

  it('answers which outage an instant falls in, and how long the engine was away in a span', () => {
    expect(outageAt(outage, at(10))).toBeUndefined();
    expect(outageAt(outage, at(11))).toEqual(outage[0]);
    expect(outageAt(outage, at(50))).toEqual(outage[0]);
    expect(outageAt(outage, at(51))).toBeUndefined();
    expect(awayDuring(outage, at(0), at(100))).toBe(40_000);
    expect(awayDuring(outage, at(20), at(30))).toBe(10_000);
    expect(awayDuring([{ from: at(10) }], at(0), at(30))).toBe(20_000);
    expect(awayDuring(outage, at(60), at(100))).toBe(0);
  });
});
