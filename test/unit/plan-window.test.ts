/**
 * An app's update window in the pure planner and the phase an operator reads
 * (agent/reconcile/window-hold.ts): a new revision of an app that runs is
 * pulled at once and swapped in only while the window is open, unless forced;
 * a first install, a rollback and a swap already begun are not held. The
 * windows are evaluated at fixed instants: Sunday 6 December 2026 at noon UTC
 * the window mon-fri 02:00–04:00 Europe/Berlin is closed (it opens Monday at
 * 01:00Z); Monday at 01:30Z it is open.
 */
import { describe, expect, it } from 'vitest';
import { appStates } from '../../agent/reconcile/phases.js';
import { plan } from '../../agent/reconcile/plan.js';
import { stashName } from '../../agent/reconcile/slot.js';
import { closedWindows, waitsForWindow } from '../../agent/reconcile/window-hold.js';
import { specHash } from '../../agent/runtime/spec-hash.js';
import type { ContainerSpec, DesiredApp, UpdatePolicy } from '../../shared/index.js';
import { type ContextOverrides, committedTo, container, ctx as context, healthy } from '../support/plan-fixtures.js';

const SUNDAY_NOON = Date.parse('2026-12-06T12:00:00Z');
const MONDAY_IN_WINDOW = Date.parse('2026-12-07T01:30:00Z');
const window: UpdatePolicy['window'] = { days: ['mon-fri'], from: '02:00', to: '04:00', timezone: 'Europe/Berlin' };

const v1: ContainerSpec = { name: 'web', image: 'reg.local/web:1', ports: ['8080:80'] };
const v2: ContainerSpec = { ...v1, image: 'reg.local/web:2' };
const db1: ContainerSpec = { name: 'db', image: 'reg.local/db:1' };
const db2: ContainerSpec = { ...db1, image: 'reg.local/db:2' };

const app = (containers: ContainerSpec[], revision: number, update: UpdatePolicy = {}): DesiredApp => ({
  name: 'shop',
  revision,
  containers,
  update: { window, ...update },
});

/** The plan context at `now`: the windows of `apps` evaluated on that clock. */
const at = (now: number, apps: DesiredApp[], over: ContextOverrides = {}) => context({ ...over, windows: [...closedWindows(apps, now)] });

const records = committedTo(1, v1);
const running = container(v1);

describe('download-then-kill (the default)', () => {
  const update = [app([v2], 2)];

  it('pulls the new image at once while the window is closed (ahead: behind what is needed now), but does not swap', () => {
    expect(plan([running], update, at(SUNDAY_NOON, update, { images: [v1.image], records }))).toMatchObject([
      { action: 'pull', image: v2.image, appRevision: 2, ahead: true },
    ]);
    expect(plan([running], update, at(MONDAY_IN_WINDOW, update, { images: [v1.image], records }))[0]).not.toHaveProperty('ahead');
    expect(plan([running], update, at(SUNDAY_NOON, update, { images: [v1.image, v2.image], records }))).toEqual([]);
  });

  it('swaps once the window is open', () => {
    expect(plan([running], update, at(MONDAY_IN_WINDOW, update, { images: [v1.image, v2.image], records }))).toMatchObject([
      { action: 'swap', id: running.id, name: 'shop_web', specHash: specHash(v2) },
    ]);
  });

  it('swaps at once when the operator forced the revision', () => {
    const forced = [{ ...app([v2], 2), forceUpdate: true }];
    expect(plan([running], forced, at(SUNDAY_NOON, forced, { images: [v1.image, v2.image], records }))).toMatchObject([
      { action: 'swap', id: running.id, specHash: specHash(v2) },
    ]);
  });

  it('does not hold a first install: nothing of the app runs', () => {
    const install = [app([v1], 1)];
    expect(plan([], install, at(SUNDAY_NOON, install))).toMatchObject([{ action: 'pull', image: v1.image }]);
    expect(plan([], install, at(SUNDAY_NOON, install, { images: [v1.image] }))).toMatchObject([{ action: 'run', specHash: specHash(v1) }]);
  });

  it('does not hold an app none of whose containers runs (nothing to interrupt)', () => {
    const exited = container(v1, { state: 'exited', exitCode: 1 });
    expect(plan([exited], update, at(SUNDAY_NOON, update, { images: [v1.image, v2.image], records }))).toMatchObject([
      { action: 'swap', id: exited.id, specHash: specHash(v2) },
    ]);
  });
});

describe('what a closed window does not hold', () => {
  const onTrial = container(v2, { appRevision: 2 });
  const kept = container(v1, { state: 'exited', dockerName: stashName('shop_web', specHash(v1)) });
  const update = [app([v2], 2)];

  it('a candidate that fails its gate is rolled back', () => {
    const failed = { status: 'unhealthy' as const, reason: 'container web exited with code 1' };
    expect(
      plan([onTrial, kept], update, at(SUNDAY_NOON, update, { images: [v1.image, v2.image], records, health: [[onTrial.id, failed]] })),
    ).toEqual([{ app: 'shop', container: '*', action: 'rollback', appRevision: 2, reason: failed.reason }]);
  });

  it('the rolled-back revision goes back to the committed version', () => {
    const rolledBack = new Map([['shop', { ...records.get('shop')!, rolledBack: { revision: 2, reason: 'unhealthy' } }]]);
    const view = at(SUNDAY_NOON, update, { images: [v1.image, v2.image], records: rolledBack });
    expect(plan([onTrial, kept], update, view)).toMatchObject([{ action: 'stop', id: onTrial.id }]);
    expect(plan([kept], update, view)).toMatchObject([{ action: 'restore', id: kept.id, name: 'shop_web' }]);
    expect(waitsForWindow(update[0]!, [onTrial, kept], view)).toBeUndefined();
  });

  it('a candidate that started inside the window is committed after it closed', () => {
    expect(
      plan([onTrial, kept], update, at(SUNDAY_NOON, update, { images: [v1.image, v2.image], records, health: [[onTrial.id, healthy]] })),
    ).toMatchObject([{ action: 'commit', appRevision: 2, specHash: specHash(v2) }]);
  });

  it('the rest of a swap that began inside the window: the app is not left half on each version', () => {
    const both = [app([v2, db2], 2)];
    const twoRecords = committedTo(1, v1, db1);
    const dbOld = container(db1);
    const images = [v1.image, v2.image, db1.image, db2.image];
    // web's new version runs on trial; db's swap was cut short (its engine call failed) before the window closed.
    expect(plan([onTrial, kept, dbOld], both, at(SUNDAY_NOON, both, { images, records: twoRecords }))).toMatchObject([
      { action: 'swap', container: 'db', id: dbOld.id, specHash: specHash(db2) },
    ]);
  });

  it('a container the revision does not change is run again if it went missing', () => {
    const both = [app([v2, db1], 2)];
    const twoRecords = committedTo(1, v1, db1);
    expect(plan([running], both, at(SUNDAY_NOON, both, { images: [v1.image, v2.image, db1.image], records: twoRecords }))).toMatchObject([
      { action: 'run', container: 'db', specHash: specHash(db1) },
    ]);
  });
});

describe('the app is held as a whole', () => {
  it('a container the new revision adds is not started, nor one it drops removed, before the window opens', () => {
    const added = [app([v1, db1], 2)];
    const images = [v1.image, db1.image];
    expect(plan([running], added, at(SUNDAY_NOON, added, { images, records }))).toEqual([]);
    expect(plan([running], added, at(MONDAY_IN_WINDOW, added, { images, records }))).toMatchObject([{ action: 'run', container: 'db' }]);

    const dropped = [app([v1], 2)];
    const dbRunning = container(db1);
    const twoRecords = committedTo(1, v1, db1);
    expect(plan([running, dbRunning], dropped, at(SUNDAY_NOON, dropped, { images, records: twoRecords }))).toEqual([]);
    expect(plan([running, dbRunning], dropped, at(MONDAY_IN_WINDOW, dropped, { images, records: twoRecords }))).toMatchObject([
      { action: 'stop', container: 'db', reason: 'container removed from the app spec' },
    ]);
  });

  it('another app without a window updates meanwhile', () => {
    const other: DesiredApp = { name: 'cart', revision: 2, containers: [{ ...v2 }] };
    const cartOld = container(v1, { app: 'cart', id: 'cart-1', dockerName: 'cart_web' });
    const apps = [app([v2], 2), other];
    const both = new Map([...records, ['cart', records.get('shop')!]]);
    expect(plan([running, cartOld], apps, at(SUNDAY_NOON, apps, { images: [v1.image, v2.image], records: both }))).toMatchObject([
      { action: 'swap', app: 'cart', id: 'cart-1' },
    ]);
  });
});

describe('start-then-kill', () => {
  const update = [app([v2], 2, { strategy: 'start-then-kill' })];

  it('pulls ahead, and starts the new version beside the old one only once the window is open', () => {
    expect(plan([running], update, at(SUNDAY_NOON, update, { images: [v1.image], records }))).toMatchObject([{ action: 'pull' }]);
    expect(plan([running], update, at(SUNDAY_NOON, update, { images: [v1.image, v2.image], records }))).toEqual([]);
    expect(plan([running], update, at(MONDAY_IN_WINDOW, update, { images: [v1.image, v2.image], records }))).toMatchObject([
      { action: 'run', name: `shop_web.next-${specHash(v2).slice(0, 8)}` },
    ]);
  });
});

describe('kill-then-download', () => {
  const update = [app([v2], 2, { strategy: 'kill-then-download' })];

  it('cannot pull ahead (it stops the running version first): it neither stops nor pulls until the window opens', () => {
    expect(plan([running], update, at(SUNDAY_NOON, update, { images: [v1.image], records }))).toEqual([]);
    expect(plan([running], update, at(MONDAY_IN_WINDOW, update, { images: [v1.image], records }))).toMatchObject([
      { action: 'stash', id: running.id, reason: 'kill-then-download: stopping the running version before pulling' },
    ]);
  });

  it('once the running version is stopped, the pull goes on even if the window has closed', () => {
    const stashed = container(v1, { state: 'exited', dockerName: stashName('shop_web', specHash(v1)) });
    expect(plan([stashed], update, at(SUNDAY_NOON, update, { images: [v1.image], records }))).toMatchObject([
      { action: 'pull', image: v2.image },
    ]);
  });
});

describe('what the operator reads', () => {
  const idle = { pulling: new Set<string>(), failures: new Map<string, string>(), health: new Map(), records };

  it('pending, naming the window, its zone and when it opens, and held until then (heldUntil, for a rollout at the hub)', () => {
    const update = [app([v2], 2)];
    expect(appStates(update, [running], { ...idle, windows: closedWindows(update, SUNDAY_NOON) })[0]).toMatchObject({
      phase: 'pending',
      message: 'revision 2 waits for its update window mon-fri 02:00–04:00 Europe/Berlin (opens 2026-12-07T01:00:00Z)',
      heldUntil: '2026-12-07T01:00:00.000Z',
    });
  });

  it('pulling while the new image comes, before that, held until the window opens all the same', () => {
    const update = [app([v2], 2)];
    expect(
      appStates(update, [running], { ...idle, pulling: new Set([v2.image]), windows: closedWindows(update, SUNDAY_NOON) })[0],
    ).toMatchObject({ phase: 'pulling', message: `pulling ${v2.image}`, heldUntil: '2026-12-07T01:00:00.000Z' });
  });

  it('held behind an update lock and a closed window, it says when the window opens', () => {
    const update = [app([v2], 2)];
    const locks = new Map([['shop', '/data/shop/updates.lock']]);
    expect(appStates(update, [running], { ...idle, locks, windows: closedWindows(update, SUNDAY_NOON) })[0]).toMatchObject({
      phase: 'pending',
      message: expect.stringMatching(/update lock/),
      heldUntil: '2026-12-07T01:00:00.000Z',
    });
  });

  it('not held once the window is open, for a forced revision, a first install or an app that runs its revision', () => {
    const update = [app([v2], 2)];
    const heldUntil = expect.objectContaining({ heldUntil: expect.anything() });
    expect(appStates(update, [running], { ...idle, windows: closedWindows(update, MONDAY_IN_WINDOW) })[0]).toEqual(
      expect.not.objectContaining({ heldUntil: expect.anything() }),
    );
    const forced = [{ ...app([v2], 2), forceUpdate: true }];
    expect(appStates(forced, [running], { ...idle, windows: closedWindows(forced, SUNDAY_NOON) })[0]).not.toEqual(heldUntil);
    const first = [app([v1], 1)];
    expect(appStates(first, [], { ...idle, records: new Map(), windows: closedWindows(first, SUNDAY_NOON) })[0]).not.toEqual(heldUntil);
    expect(appStates(first, [running], { ...idle, windows: closedWindows(first, SUNDAY_NOON) })[0]).toMatchObject({ phase: 'running' });
    expect(appStates(first, [running], { ...idle, windows: closedWindows(first, SUNDAY_NOON) })[0]).not.toEqual(heldUntil);
  });

  it('kill-then-download says it pulls only once the window opens', () => {
    const update = [app([v2], 2, { strategy: 'kill-then-download' })];
    expect(appStates(update, [running], { ...idle, windows: closedWindows(update, SUNDAY_NOON) })[0]?.message).toBe(
      'revision 2 waits for its update window mon-fri 02:00–04:00 Europe/Berlin (opens 2026-12-07T01:00:00Z); ' +
        'kill-then-download stops the running version before it pulls, so it pulls only then',
    );
  });

  it('pending too for a revision that only drops a container, though all it wants runs', () => {
    const dropped = [app([v1], 2)];
    const twoRecords = committedTo(1, v1, db1);
    expect(
      appStates(dropped, [running, container(db1)], { ...idle, records: twoRecords, windows: closedWindows(dropped, SUNDAY_NOON) })[0],
    ).toMatchObject({ phase: 'pending', message: expect.stringMatching(/^revision 2 waits for its update window /) });
  });

  it('no word of the window once it is open, or for a forced revision', () => {
    const update = [app([v2], 2)];
    expect(appStates(update, [running], { ...idle, windows: closedWindows(update, MONDAY_IN_WINDOW) })[0]).toEqual(
      expect.not.objectContaining({ message: expect.anything() }),
    );
    const forced = [{ ...app([v2], 2), forceUpdate: true }];
    expect(appStates(forced, [running], { ...idle, windows: closedWindows(forced, SUNDAY_NOON) })[0]).toEqual(
      expect.not.objectContaining({ message: expect.anything() }),
    );
  });

  it('a window without a zone is read, and named, in the device`s', () => {
    const saved = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      const update = [app([v2], 2, { window: { from: '02:00', to: '04:00' } })];
      expect(closedWindows(update, SUNDAY_NOON).get('shop')).toEqual({
        window: '02:00–04:00 America/New_York',
        opensAt: new Date('2026-12-07T07:00:00Z'),
      });
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});
