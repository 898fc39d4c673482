/**
 * The rollout state machine, pure: (rollout, the matched devices, what they
 * report, now) → the next rollout. The dispatcher stores the result and turns
 * each device's assigned revision into its desired document; nothing here
 * does I/O, so every edge case is a unit test.
 *
 * Rules:
 * - Devices are taken in a fixed order (sorted by id at the start, newcomers
 *   appended). The first `canary` devices form the canary stage; the rest go
 *   in batches of `batchSize` (the next batch starts when the previous one has
 *   settled), or, with `maxUnavailable`, through a sliding window that keeps
 *   at most that many updating at once.
 * - A device is told to run the new revision while `updating`, `healthy` or
 *   `failed`; while `pending` or `reverted` it runs `from`, the revision it
 *   was told to run when the rollout started (or when it joined).
 * - `updating` → `healthy` when it reports the new revision `running`;
 *   → `failed` when it reports it `failed`/`rolled-back`, or when
 *   `deviceTimeout` passes first. Time the new revision waits for the app's
 *   update window is not counted: a device that reports it held until the
 *   window opens (`heldUntil`) has its timeout counted from then, or from when
 *   it reports it no longer held, if sooner. A failed device stays on the new revision
 *   (it converges if it comes back) until the failure threshold is reached:
 *   then every failed device becomes `reverted` and the rollout pauses.
 *   Reverted devices no longer count toward the threshold, so a resume goes on
 *   with the pending devices and trips again only on new failures.
 * - An abort sends every device back to `from`; the app's current revision
 *   stays the new one (history is never rewritten).
 */
import type { AppPhase, RolloutCounts, RolloutDeviceState, RolloutPhase, RolloutPolicy, RolloutStatus } from '../../shared/index.js';
import { parseDuration, ROLLOUT_DEVICE_STATES } from '../../shared/index.js';

export const DEFAULT_DEVICE_TIMEOUT_MS = 10 * 60_000;

export interface RolloutDevice {
  id: string;
  /** The revision this device runs while it is not (or no longer) updated. */
  from: number;
  canary: boolean;
  state: RolloutDeviceState;
  since: string;
  message?: string;
  /**
   * While `updating`: when the new revision's hold for its update window ends, as the device
   * last reported it; `deviceTimeout` counts from the later of this and `since`.
   */
  heldUntil?: string;
}

export interface Rollout {
  app: string;
  revision: number;
  previousRevision: number;
  phase: RolloutPhase;
  reason?: string;
  policy: RolloutPolicy;
  /** The canary stage has settled (so a pause after it happens once). */
  canaryDone: boolean;
  devices: RolloutDevice[];
  startedAt: string;
  updatedAt: string;
}

/** What one device reports about the app. */
export interface AppReport {
  revision: number;
  phase: AppPhase;
  /** The revision waits for its update window until then (the device's AppState.heldUntil). */
  heldUntil?: string;
}

/** A matched device and the revision it is told to run outside this rollout. */
export interface Candidate {
  id: string;
  from: number;
}

export class RolloutTransitionError extends Error {}

/** `3` → 3 (at most `total`); `"10%"` → 10% of `total`, rounded up. */
export function canarySize(canary: RolloutPolicy['canary'], total: number): number {
  if (canary === undefined) return 0;
  if (typeof canary === 'number') return Math.min(canary, total);
  return Math.min(total, Math.ceil((Number.parseInt(canary, 10) * total) / 100));
}

export function deviceTimeoutMs(policy: RolloutPolicy): number {
  return policy.deviceTimeout ? parseDuration(policy.deviceTimeout) : DEFAULT_DEVICE_TIMEOUT_MS;
}

export function startRollout(
  init: { app: string; revision: number; previousRevision: number; policy: RolloutPolicy; devices: readonly Candidate[] },
  reports: (deviceId: string) => AppReport | undefined,
  now: Date,
): Rollout {
  const at = now.toISOString();
  const sorted = [...init.devices].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const canary = canarySize(init.policy.canary, sorted.length);
  const rollout: Rollout = {
    app: init.app,
    revision: init.revision,
    previousRevision: init.previousRevision,
    phase: 'progressing',
    policy: init.policy,
    canaryDone: canary === 0,
    devices: sorted.map((d, i) => ({ id: d.id, from: d.from, canary: i < canary, state: 'pending', since: at })),
    startedAt: at,
    updatedAt: at,
  };
  return advanceRollout(rollout, init.devices, reports, now);
}

/** The revision a device in (or joining) this rollout must run. */
export function assignedRevision(rollout: Rollout, deviceId: string, fallback: number): number {
  const device = rollout.devices.find((d) => d.id === deviceId);
  if (!device) {
    // Not matched when the rollout was last advanced: a finished rollout's
    // outcome applies to it; otherwise it waits on its current revision.
    if (rollout.phase === 'complete') return rollout.revision;
    return fallback;
  }
  if (rollout.phase === 'aborted') return device.from;
  return device.state === 'pending' || device.state === 'reverted' ? device.from : rollout.revision;
}

/** One step of the state machine; returns the same object when nothing changed. */
export function advanceRollout(
  rollout: Rollout,
  matched: readonly Candidate[],
  reports: (deviceId: string) => AppReport | undefined,
  now: Date,
): Rollout {
  if (rollout.phase === 'complete' || rollout.phase === 'aborted') return rollout;
  const next = structuredClone(rollout);
  const at = now.toISOString();
  const set = (device: RolloutDevice, state: RolloutDeviceState, message?: string) => {
    device.state = state;
    device.since = at;
    delete device.heldUntil;
    if (message === undefined) delete device.message;
    else device.message = message;
  };

  // Membership follows scheduling: devices that stopped matching leave, new ones queue up.
  const ids = new Set(matched.map((m) => m.id));
  next.devices = next.devices.filter((d) => ids.has(d.id));
  for (const m of matched) {
    if (!next.devices.some((d) => d.id === m.id)) next.devices.push({ id: m.id, from: m.from, canary: false, state: 'pending', since: at });
  }

  // Observe: what devices told to run the new revision report about it.
  const timeout = deviceTimeoutMs(next.policy);
  for (const device of next.devices) {
    if (device.state === 'pending' || device.state === 'reverted') continue;
    const report = reports(device.id);
    const atRevision = report?.revision === next.revision;
    if (atRevision && report.phase === 'running') {
      if (device.state !== 'healthy') set(device, 'healthy');
    } else if (atRevision && (report.phase === 'failed' || report.phase === 'rolled-back')) {
      if (device.state !== 'failed') set(device, 'failed', `reported ${report.phase} at revision ${next.revision}`);
    } else if (device.state === 'updating') {
      if (atRevision) noteHold(device, report.heldUntil, now);
      const held = device.heldUntil !== undefined && Date.parse(device.heldUntil) > Date.parse(device.since);
      const from = held ? Date.parse(device.heldUntil!) : Date.parse(device.since);
      if (now.getTime() - from >= timeout) {
        const within = next.policy.deviceTimeout ?? '10m';
        const after = held ? ` of its update window opening at ${device.heldUntil}` : '';
        set(device, 'failed', `not healthy at revision ${next.revision} within ${within}${after}`);
      }
    }
  }

  // The failure threshold pauses the rollout and sends the failed devices back.
  const failed = next.devices.filter((d) => d.state === 'failed');
  const threshold = next.policy.failureThreshold ?? 1;
  if (failed.length >= threshold) {
    for (const device of failed) set(device, 'reverted', device.message);
    next.phase = 'paused';
    next.reason =
      `${failed.length} device(s) failed at revision ${next.revision} (failureThreshold ${threshold}): ` +
      `${failed.map((d) => d.id).join(', ')}; they were sent back to their previous revision`;
  }

  if (next.phase === 'progressing') progress(next, set);
  return finish(rollout, next, at);
}

/**
 * Keeps when the device's hold for its update window ends: as it reports it while held; once it
 * reports the revision no longer held before that time (the window opened early, or the revision
 * was forced), the hold ended now. The last hold stays once over, so the timeout keeps counting
 * from its end through the reports that follow it.
 */
function noteHold(device: RolloutDevice, reported: string | undefined, now: Date): void {
  if (reported !== undefined) {
    if (Number.isFinite(Date.parse(reported))) device.heldUntil = reported;
    return;
  }
  if (device.heldUntil !== undefined && Date.parse(device.heldUntil) > now.getTime()) device.heldUntil = now.toISOString();
}

function progress(next: Rollout, set: (device: RolloutDevice, state: RolloutDeviceState) => void): void {
  const settled = (d: RolloutDevice) => d.state !== 'pending' && d.state !== 'updating';
  if (!next.canaryDone) {
    const canary = next.devices.filter((d) => d.canary);
    for (const device of canary) if (device.state === 'pending') set(device, 'updating');
    if (!canary.every(settled)) return;
    next.canaryDone = true;
    if (next.policy.pauseAfterCanary) {
      next.phase = 'paused';
      next.reason = `canary done (${canary.filter((d) => d.state === 'healthy').length}/${canary.length} healthy): resume to continue`;
      return;
    }
  }
  const rest = next.devices.filter((d) => !d.canary);
  const updating = rest.filter((d) => d.state === 'updating').length;
  const window = next.policy.maxUnavailable;
  const slots = window !== undefined ? window - updating : updating === 0 ? (next.policy.batchSize ?? 1) : 0;
  for (const device of rest.filter((d) => d.state === 'pending').slice(0, Math.max(0, slots))) set(device, 'updating');
  if (next.devices.every(settled)) {
    next.phase = 'complete';
    delete next.reason;
  }
}

function finish(before: Rollout, next: Rollout, at: string): Rollout {
  if (JSON.stringify(before) === JSON.stringify(next)) return before;
  next.updatedAt = at;
  return next;
}

export function pauseRollout(rollout: Rollout, now: Date): Rollout {
  if (rollout.phase === 'complete' || rollout.phase === 'aborted') {
    throw new RolloutTransitionError(`the rollout of revision ${rollout.revision} is already ${rollout.phase}`);
  }
  if (rollout.phase === 'paused') return rollout;
  return { ...rollout, phase: 'paused', reason: 'paused by the operator', updatedAt: now.toISOString() };
}

/** Back to progressing; the caller advances it, which starts the next devices at once. */
export function resumeRollout(rollout: Rollout, now: Date): Rollout {
  if (rollout.phase !== 'paused') {
    throw new RolloutTransitionError(`the rollout of revision ${rollout.revision} is ${rollout.phase}, not paused`);
  }
  const { reason: _reason, ...rest } = rollout;
  return { ...rest, phase: 'progressing', updatedAt: now.toISOString() };
}

export function abortRollout(rollout: Rollout, now: Date): Rollout {
  if (rollout.phase === 'aborted') return rollout;
  const at = now.toISOString();
  return {
    ...rollout,
    phase: 'aborted',
    reason: `aborted by the operator: devices run their previous revision (revision ${rollout.revision} stays current in history)`,
    devices: rollout.devices.map((d) =>
      d.state === 'pending' || d.state === 'reverted' ? d : { id: d.id, from: d.from, canary: d.canary, state: 'reverted', since: at },
    ),
    updatedAt: at,
  };
}

export function rolloutStatus(rollout: Rollout): RolloutStatus {
  const counts = Object.fromEntries(ROLLOUT_DEVICE_STATES.map((s) => [s, 0])) as RolloutCounts;
  counts.total = rollout.devices.length;
  for (const device of rollout.devices) counts[device.state] += 1;
  return {
    app: rollout.app,
    revision: rollout.revision,
    previousRevision: rollout.previousRevision,
    phase: rollout.phase,
    ...(rollout.reason !== undefined ? { reason: rollout.reason } : {}),
    canary: rollout.devices.filter((d) => d.canary).length,
    devices: rollout.devices.map((d) => ({
      id: d.id,
      revision: assignedRevision(rollout, d.id, d.from),
      state: d.state,
      since: d.since,
      canary: d.canary,
      ...(d.message !== undefined ? { message: d.message } : {}),
    })),
    counts,
    startedAt: rollout.startedAt,
    updatedAt: rollout.updatedAt,
  };
}
