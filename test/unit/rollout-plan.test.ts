import { describe, expect, it } from 'vitest';
import {
  type AppReport,
  abortRollout,
  advanceRollout,
  assignedRevision,
  canarySize,
  pauseRollout,
  type Rollout,
  RolloutTransitionError,
  resumeRollout,
  rolloutStatus,
  startRollout,
} from '../../broker/dispatcher/rollout-plan.js';
import type { RolloutPolicy } from '../../shared/index.js';

const T0 = new Date('2024-05-01T12:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const ids = ['d1', 'd2', 'd3', 'd4', 'd5'];
const candidates = ids.map((id) => ({ id, from: 1 }));

/** A fleet that reports, per device, what it runs. */
class Fleet {
  readonly reports = new Map<string, AppReport>();
  run(id: string, revision: number, phase: AppReport['phase'] = 'running'): void {
    this.reports.set(id, { revision, phase });
  }
  /** Every device told to run `revision` reports it running (or `phase` for the given bad ones). */
  converge(rollout: Rollout, bad: string[] = [], phase: AppReport['phase'] = 'rolled-back'): void {
    for (const d of rollout.devices) {
      const revision = assignedRevision(rollout, d.id, d.from);
      this.run(d.id, revision, revision === rollout.revision && bad.includes(d.id) ? phase : 'running');
    }
  }
  readonly get = (id: string) => this.reports.get(id);
}

function start(policy: RolloutPolicy, fleet = new Fleet(), now = T0): Rollout {
  for (const id of ids) if (!fleet.reports.has(id)) fleet.run(id, 1);
  return startRollout({ app: 'web', revision: 2, previousRevision: 1, policy, devices: candidates }, fleet.get, now);
}

const step = (r: Rollout, fleet: Fleet, now = T0) => advanceRollout(r, candidates, fleet.get, now);
const states = (r: Rollout) => Object.fromEntries(r.devices.map((d) => [d.id, d.state]));
const revisions = (r: Rollout) => r.devices.map((d) => assignedRevision(r, d.id, d.from));

describe('canarySize', () => {
  it('takes counts up to the fleet size and percentages rounded up', () => {
    expect(canarySize(undefined, 5)).toBe(0);
    expect(canarySize(2, 5)).toBe(2);
    expect(canarySize(9, 5)).toBe(5);
    expect(canarySize('10%', 5)).toBe(1);
    expect(canarySize('40%', 5)).toBe(2);
    expect(canarySize('0%', 5)).toBe(0);
  });
});

describe('rollout state machine', () => {
  it('updates the canary first, pauses after it, then goes batch by batch to complete', () => {
    const fleet = new Fleet();
    let r = start({ canary: 1, pauseAfterCanary: true, batchSize: 2 }, fleet);
    expect(r.phase).toBe('progressing');
    expect(states(r)).toEqual({ d1: 'updating', d2: 'pending', d3: 'pending', d4: 'pending', d5: 'pending' });
    expect(revisions(r)).toEqual([2, 1, 1, 1, 1]);

    // Nothing reported yet: nothing moves.
    expect(step(r, fleet, at(5))).toBe(r);

    fleet.converge(r);
    r = step(r, fleet, at(10));
    expect(r.phase).toBe('paused');
    expect(r.reason).toMatch(/canary done \(1\/1 healthy\)/);
    expect(states(r).d1).toBe('healthy');
    expect(revisions(r)).toEqual([2, 1, 1, 1, 1]);

    r = step(resumeRollout(r, at(20)), fleet, at(20));
    expect(r.phase).toBe('progressing');
    expect(r.reason).toBeUndefined();
    expect(revisions(r)).toEqual([2, 2, 2, 1, 1]);

    fleet.converge(r);
    r = step(r, fleet, at(30));
    expect(revisions(r)).toEqual([2, 2, 2, 2, 2]);
    fleet.converge(r);
    r = step(r, fleet, at(40));
    expect(r.phase).toBe('complete');
    expect(rolloutStatus(r).counts).toEqual({ total: 5, pending: 0, updating: 0, healthy: 5, failed: 0, reverted: 0 });
  });

  it('without pauseAfterCanary goes straight on; maxUnavailable keeps a sliding window', () => {
    const fleet = new Fleet();
    let r = start({ canary: 1, maxUnavailable: 2 }, fleet);
    fleet.converge(r);
    r = step(r, fleet);
    expect(states(r)).toMatchObject({ d1: 'healthy', d2: 'updating', d3: 'updating', d4: 'pending' });
    // One of the window finishes: the next device starts without waiting for the other.
    fleet.run('d2', 2);
    r = step(r, fleet);
    expect(states(r)).toMatchObject({ d2: 'healthy', d3: 'updating', d4: 'updating', d5: 'pending' });
  });

  it('pauses at the failure threshold and sends the failed devices back', () => {
    const fleet = new Fleet();
    let r = start({ canary: 1, batchSize: 2, failureThreshold: 2 }, fleet);
    fleet.converge(r);
    r = step(r, fleet);
    expect(revisions(r)).toEqual([2, 2, 2, 1, 1]);

    // One failure is below the threshold: the device stays on the new revision, the rollout goes on.
    fleet.converge(r, ['d2']);
    r = step(r, fleet);
    expect(r.phase).toBe('progressing');
    expect(r.devices.find((d) => d.id === 'd2')).toMatchObject({ state: 'failed', message: 'reported rolled-back at revision 2' });
    expect(revisions(r)).toEqual([2, 2, 2, 2, 2]);

    fleet.converge(r, ['d2', 'd4']);
    r = step(r, fleet);
    expect(r.phase).toBe('paused');
    expect(r.reason).toMatch(/^2 device\(s\) failed at revision 2 \(failureThreshold 2\): d2, d4/);
    expect(states(r)).toMatchObject({ d2: 'reverted', d4: 'reverted', d5: 'healthy' });
    expect(revisions(r)).toEqual([2, 1, 2, 1, 2]);

    // Resuming does not trip again on the reverted devices.
    fleet.converge(r);
    r = step(resumeRollout(r, at(1)), fleet, at(1));
    expect(r.phase).toBe('complete');
    expect(rolloutStatus(r).counts).toMatchObject({ healthy: 3, reverted: 2 });
  });

  it('counts a device that stays silent past deviceTimeout as failed; it converges if it comes back', () => {
    const fleet = new Fleet();
    let r = start({ batchSize: 5, failureThreshold: 2, deviceTimeout: '30s' }, fleet);
    expect(revisions(r)).toEqual([2, 2, 2, 2, 2]);
    fleet.converge(r);
    fleet.run('d3', 1); // d3 never picks up revision 2
    r = step(r, fleet, at(29));
    expect(states(r).d3).toBe('updating');
    expect(r.phase).toBe('progressing');
    r = step(r, fleet, at(31));
    expect(r.devices.find((d) => d.id === 'd3')).toMatchObject({ state: 'failed', message: 'not healthy at revision 2 within 30s' });
    expect(r.phase).toBe('complete');
    expect(assignedRevision(r, 'd3', 1)).toBe(2);
  });

  it('does not count a device whose engine is unreachable (phase unknown) as healthy; past deviceTimeout it fails', () => {
    const fleet = new Fleet();
    let r = start({ batchSize: 5, failureThreshold: 2, deviceTimeout: '30s' }, fleet);
    fleet.converge(r);
    fleet.run('d2', 2, 'unknown'); // told revision 2, but its agent cannot see its containers
    r = step(r, fleet, at(10));
    expect(states(r)).toMatchObject({ d1: 'healthy', d2: 'updating' });
    r = step(r, fleet, at(31));
    expect(r.devices.find((d) => d.id === 'd2')).toMatchObject({ state: 'failed', message: 'not healthy at revision 2 within 30s' });
  });

  describe('a device whose new revision waits for its update window', () => {
    const held = (heldUntil: Date) => ({ revision: 2, phase: 'pending' as const, heldUntil: heldUntil.toISOString() });
    const device = (r: Rollout, id: string) => r.devices.find((d) => d.id === id);

    it('is not failed for the wait: its deviceTimeout counts from the window’s opening', () => {
      const fleet = new Fleet();
      let r = start({ batchSize: 5, failureThreshold: 1, deviceTimeout: '30s' }, fleet);
      fleet.converge(r);
      // d3 waits two hours for its window.
      fleet.reports.set('d3', held(at(7200)));
      r = step(r, fleet, at(10));
      expect(device(r, 'd3')).toMatchObject({ state: 'updating', since: T0.toISOString(), heldUntil: at(7200).toISOString() });
      r = step(r, fleet, at(3600));
      expect(states(r).d3).toBe('updating');
      expect(r.phase).toBe('progressing');
      // The window opened: the agent swaps, pulling or starting, no longer held. 30 s from the opening it may still come.
      fleet.run('d3', 2, 'starting');
      r = step(r, fleet, at(7200 + 29));
      expect(states(r).d3).toBe('updating');
      r = step(r, fleet, at(7200 + 31));
      expect(device(r, 'd3')).toMatchObject({
        state: 'reverted',
        message: `not healthy at revision 2 within 30s of its update window opening at ${at(7200).toISOString()}`,
      });
      expect(device(r, 'd3')).not.toHaveProperty('heldUntil');
      expect(r.phase).toBe('paused');
    });

    it('becomes healthy once it runs the revision after the opening', () => {
      const fleet = new Fleet();
      let r = start({ batchSize: 5, deviceTimeout: '30s' }, fleet);
      fleet.converge(r);
      fleet.reports.set('d3', held(at(7200)));
      r = step(r, fleet, at(3600));
      fleet.run('d3', 2);
      r = step(r, fleet, at(7210));
      expect(device(r, 'd3')).toEqual({ id: 'd3', from: 1, canary: false, state: 'healthy', since: at(7210).toISOString() });
      expect(r.phase).toBe('complete');
    });

    it('held past the timeout and silent since (offline), it fails only once the timeout has passed after the opening', () => {
      const fleet = new Fleet();
      let r = start({ batchSize: 5, failureThreshold: 2, deviceTimeout: '30s' }, fleet);
      fleet.converge(r);
      fleet.reports.set('d3', held(at(600)));
      r = step(r, fleet, at(5));
      // Its last report still says held; the hub's clock passes the opening and the timeout.
      r = step(r, fleet, at(629));
      expect(states(r).d3).toBe('updating');
      r = step(r, fleet, at(631));
      expect(states(r).d3).toBe('failed');
    });

    it('a hold that ends early (a forced revision, a window opened sooner) counts the timeout from when it ended', () => {
      const fleet = new Fleet();
      let r = start({ batchSize: 5, failureThreshold: 2, deviceTimeout: '30s' }, fleet);
      fleet.converge(r);
      fleet.reports.set('d3', held(at(7200)));
      r = step(r, fleet, at(10));
      // Forced at 100 s: no longer held, pulling.
      fleet.run('d3', 2, 'pulling');
      r = step(r, fleet, at(100));
      expect(device(r, 'd3')).toMatchObject({ state: 'updating', heldUntil: at(100).toISOString() });
      r = step(r, fleet, at(129));
      expect(states(r).d3).toBe('updating');
      r = step(r, fleet, at(131));
      expect(device(r, 'd3')).toMatchObject({
        state: 'failed',
        message: `not healthy at revision 2 within 30s of its update window opening at ${at(100).toISOString()}`,
      });
    });

    it('a hold that ended before the device was told to update, or one reported at another revision, changes nothing', () => {
      const fleet = new Fleet();
      let r = start({ batchSize: 5, failureThreshold: 3, deviceTimeout: '30s' }, fleet);
      fleet.converge(r);
      fleet.reports.set('d3', held(at(-60)));
      fleet.reports.set('d4', { revision: 1, phase: 'pending', heldUntil: at(7200).toISOString() });
      r = step(r, fleet, at(31));
      expect(device(r, 'd3')).toMatchObject({ state: 'failed', message: 'not healthy at revision 2 within 30s' });
      expect(device(r, 'd4')).toMatchObject({ state: 'failed', message: 'not healthy at revision 2 within 30s' });
    });

    it('the same hold reported again leaves the rollout as it was (nothing to store)', () => {
      const fleet = new Fleet();
      let r = start({ batchSize: 5, deviceTimeout: '30s' }, fleet);
      fleet.converge(r);
      fleet.reports.set('d3', held(at(7200)));
      r = step(r, fleet, at(10));
      expect(step(r, fleet, at(20))).toBe(r);
    });
  });

  it('a timeout at the threshold pauses and reverts', () => {
    const fleet = new Fleet();
    let r = start({ canary: 1, deviceTimeout: '1m' }, fleet);
    r = step(r, fleet, at(61));
    expect(r.phase).toBe('paused');
    expect(states(r).d1).toBe('reverted');
    expect(revisions(r)).toEqual([1, 1, 1, 1, 1]);
  });

  it('pause stops new starts; abort sends everyone back to where they came from', () => {
    const fleet = new Fleet();
    let r = start({ batchSize: 2 }, fleet);
    r = pauseRollout(r, at(1));
    expect(r).toMatchObject({ phase: 'paused', reason: 'paused by the operator' });
    fleet.converge(r);
    r = step(r, fleet, at(2));
    expect(states(r)).toMatchObject({ d1: 'healthy', d2: 'healthy', d3: 'pending' });
    r = abortRollout(r, at(3));
    expect(r.phase).toBe('aborted');
    expect(states(r)).toMatchObject({ d1: 'reverted', d2: 'reverted', d3: 'pending' });
    expect(revisions(r)).toEqual([1, 1, 1, 1, 1]);
    // A finished rollout no longer moves, and cannot be resumed.
    expect(step(r, fleet, at(4))).toBe(r);
    expect(() => resumeRollout(r, at(5))).toThrow(RolloutTransitionError);
    expect(() => pauseRollout(r, at(5))).toThrow(RolloutTransitionError);
  });

  it('follows scheduling: newcomers queue as pending, leavers drop out; a complete rollout gives newcomers the new revision', () => {
    const fleet = new Fleet();
    let r = start({ batchSize: 5 }, fleet);
    fleet.converge(r);
    fleet.run('d6', 1);
    r = advanceRollout(r, [...candidates.slice(1), { id: 'd6', from: 1 }], fleet.get, at(1));
    expect(r.devices.map((d) => d.id)).toEqual(['d2', 'd3', 'd4', 'd5', 'd6']);
    expect(states(r).d6).toBe('updating'); // the batch settled, so the newcomer started at once
    fleet.run('d6', 2);
    r = advanceRollout(r, [...candidates.slice(1), { id: 'd6', from: 1 }], fleet.get, at(2));
    expect(r.phase).toBe('complete');
    expect(assignedRevision(r, 'd7', 1)).toBe(2);
  });

  it('completes at once with no devices', () => {
    const r = startRollout({ app: 'web', revision: 2, previousRevision: 1, policy: { canary: 1 }, devices: [] }, () => undefined, T0);
    expect(r.phase).toBe('complete');
  });
});
