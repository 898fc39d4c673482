/**
 * What jobs.get says of a queued execution its device has said nothing of (broker/jobs/views.ts
 * hubMessage): waiting for a slot, for its device, or sent; a device's own message, and every
 * execution past queued, are left as they are.
 */
import { describe, expect, it } from 'vitest';
import { hubMessage, jobDetail, needsPresence, type PresenceOf } from '../../broker/jobs/views.js';
import type { StoredExecution, StoredJob } from '../../broker/store/jobs.js';
import type { JobSpec } from '../../shared/index.js';

function job(spec: Partial<JobSpec['spec']> = {}): StoredJob {
  return {
    name: 'rotate',
    uid: 'rotate.0123456789abcdef',
    spec: { name: 'rotate', scheduling: { selectors: {} }, spec: { containers: [{ name: 'task', image: 'busybox:1.36' }], ...spec } },
    phase: 'active',
    createdAt: '2026-03-02T09:00:00.000Z',
    deadline: '2026-03-09T09:00:00.000Z',
    updatedAt: '2026-03-02T09:00:00.000Z',
  };
}

function execution(overrides: Partial<StoredExecution> = {}): StoredExecution {
  return {
    job: 'rotate',
    device: 'gw-1',
    state: 'queued',
    attempt: 0,
    admitted: true,
    cancelRequested: false,
    updatedAt: '2026-03-02T09:05:00.000Z',
    ...overrides,
  };
}

const LAST = '2026-03-02T08:00:00.000Z';
const online: PresenceOf = () => ({ online: true, lastSeen: LAST });
const offline: PresenceOf = () => ({ online: false, lastSeen: LAST });
const never: PresenceOf = () => ({ online: false, lastSeen: null });
const unknown: PresenceOf = () => undefined;

describe('why a queued execution waits', () => {
  it('says a slot, the device offline, or sent', () => {
    const limited = job({ rollout: { maxConcurrent: 20 } });
    expect(hubMessage(limited, execution({ admitted: false }), online)).toBe('waiting for a slot: at most 20 devices at a time');
    expect(hubMessage(limited, execution({ admitted: false }), offline)).toBe(
      `waiting for a slot: at most 20 devices at a time, and for the device to come back online (offline since ${LAST})`,
    );
    expect(hubMessage(limited, execution(), online)).toBe('sent to the device');
    expect(hubMessage(job(), execution(), offline)).toBe(`waiting for the device to come back online (offline since ${LAST})`);
    expect(hubMessage(job(), execution(), never)).toBe('waiting for the device to connect (it never has)');
    expect(hubMessage(job(), execution(), unknown)).toBe('waiting for the device to connect (it never has)');
    // Without maxConcurrent, one not admitted yet (the moment after the job is made) waits only for its device.
    expect(hubMessage(job(), execution({ admitted: false }), online)).toBe('sent to the device');
  });

  it('says a cancel is on its way, or waits for the device', () => {
    expect(hubMessage(job(), execution({ cancelRequested: true }), online)).toBe('cancel sent to the device');
    expect(hubMessage(job(), execution({ cancelRequested: true }), offline)).toBe(
      `cancel waits for the device to come back online (offline since ${LAST})`,
    );
  });

  it("keeps the device's own message, and adds nothing past queued", () => {
    const window = 'waiting for its window 02:00-04:00 UTC, opens 2026-03-03T02:00:00.000Z';
    expect(hubMessage(job(), execution({ message: window }), offline)).toBeUndefined();
    for (const state of ['running', 'succeeded', 'failed', 'timed-out', 'canceled', 'expired'] as const) {
      expect(hubMessage(job(), execution({ state }), offline)).toBeUndefined();
    }
    const detail = jobDetail(job(), [execution({ device: 'gw-2', message: window }), execution({ device: 'gw-1' })], offline);
    expect(detail.executions.map((e) => [e.device, e.message])).toEqual([
      ['gw-1', `waiting for the device to come back online (offline since ${LAST})`],
      ['gw-2', window],
    ]);
  });

  it('reads presence only when a queued execution has no message', () => {
    expect(needsPresence([execution({ state: 'running' }), execution({ message: 'waiting for its window' })])).toBe(false);
    expect(needsPresence([execution({ state: 'succeeded' }), execution()])).toBe(true);
  });
});
