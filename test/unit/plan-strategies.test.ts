/**
 * The planner's decisions per update strategy that plan.test.ts leaves out:
 * a candidate replaced while on trial, a revision that goes back to the
 * committed spec, the update lock under kill-then-download, start-then-kill
 * without a running old version, and an app's gate with mixed verdicts.
 * Each case walks the ticks an agent would, feeding back what the previous
 * step leaves on the device.
 */
import { describe, expect, it } from 'vitest';
import type { HealthVerdict } from '../../agent/health/verdict.js';
import { plan } from '../../agent/reconcile/plan.js';
import { stashName } from '../../agent/reconcile/slot.js';
import { specHash } from '../../agent/runtime/spec-hash.js';
import type { ContainerSpec, DesiredApp } from '../../shared/index.js';
import { type ContextOverrides, committedTo, container, ctx as context, healthy, pending } from '../support/plan-fixtures.js';

const ctx = (over: Omit<ContextOverrides, 'locks'> & { locked?: boolean } = {}) =>
  context({ ...over, ...(over.locked ? { locks: [['shop', '/data/updates.lock']] } : {}) });

const v1: ContainerSpec = { name: 'web', image: 'reg.local/web:1' };
const v2: ContainerSpec = { ...v1, image: 'reg.local/web:2' };
const v3: ContainerSpec = { ...v1, image: 'reg.local/web:3' };
const db1: ContainerSpec = { name: 'db', image: 'reg.local/db:1' };
const db2: ContainerSpec = { ...db1, image: 'reg.local/db:2' };

const app = (containers: ContainerSpec[], revision: number, strategy?: NonNullable<DesiredApp['update']>['strategy']): DesiredApp => ({
  name: 'shop',
  revision,
  containers,
  ...(strategy ? { update: { strategy } } : {}),
});

const stashed = (spec: ContainerSpec) => container(spec, { state: 'exited', dockerName: stashName(`shop_${spec.name}`, specHash(spec)) });

describe('download-then-kill', () => {
  const records = committedTo(1, v1);
  const kept = stashed(v1);

  it('stops a candidate still on trial when a newer revision arrives, keeping the committed version aside', () => {
    const onTrial = container(v2, { appRevision: 2 });
    const images = { images: [v3.image], records };
    expect(plan([kept, onTrial], [app([v3], 3)], ctx(images))).toEqual([
      { action: 'stop', app: 'shop', container: 'web', id: onTrial.id, reason: 'spec changed: replacing container' },
    ]);
    expect(plan([kept, { ...onTrial, state: 'exited' }], [app([v3], 3)], ctx(images))).toEqual([
      { action: 'remove', app: 'shop', container: 'web', id: onTrial.id, reason: 'spec changed: replacing container' },
    ]);
    // The stash stays: it is still what a rollback of revision 3 returns to.
    expect(plan([kept], [app([v3], 3)], ctx(images))).toEqual([
      { action: 'run', app: 'shop', container: 'web', appRevision: 3, specHash: specHash(v3), spec: v3, reason: 'not running' },
    ]);
  });

  it('removes a container of another spec left under another name before creating the target', () => {
    const leftover = container(v1, { state: 'exited', dockerName: 'shop_web-old' });
    expect(plan([leftover], [app([v2], 2)], ctx({ images: [v2.image] }))).toEqual([
      { action: 'remove', app: 'shop', container: 'web', id: leftover.id, reason: 'not the version to run' },
      { action: 'run', app: 'shop', container: 'web', appRevision: 2, specHash: specHash(v2), spec: v2, reason: 'not running' },
    ]);
  });

  it('retires a container of another spec left under another name in the batch of the swap, never the version it swaps out', () => {
    const running = container(v1);
    const leftover = container(v3, { state: 'exited', dockerName: 'shop_web-old' });
    expect(
      plan([running, leftover], [app([v2], 2)], ctx({ images: [v2.image], records })).map((s) => `${s.action} ${'id' in s ? s.id : ''}`),
    ).toEqual([`remove ${leftover.id}`, `swap ${running.id}`]);
  });

  it('brings the kept version back when a newer revision returns to the committed spec mid-update', () => {
    const candidate = container(v2, { appRevision: 2 });
    expect(plan([kept, candidate], [app([v1], 3)], ctx({ images: [v1.image, v2.image], records }))).toEqual([
      { action: 'stop', app: 'shop', container: 'web', id: candidate.id, reason: 'replaced by the kept version' },
    ]);
    expect(plan([kept], [app([v1], 3)], ctx({ images: [v1.image], records }))).toEqual([
      {
        action: 'restore',
        app: 'shop',
        container: 'web',
        id: kept.id,
        name: 'shop_web',
        restartPolicy: { name: 'unless-stopped' },
        reason: 'restoring the kept version',
      },
    ]);
  });

  it('retires an older candidate once a newer one is on trial, but never the kept version', () => {
    const failedEarlier = container(v2, { state: 'exited', appRevision: 2, dockerName: 'shop_web-v2' });
    const onTrial = container(v3, { appRevision: 3 });
    const superseded = { action: 'remove', app: 'shop', container: 'web', id: failedEarlier.id, reason: 'superseded by a newer version' };
    const current = [kept, failedEarlier, onTrial];
    expect(plan(current, [app([v3], 3)], ctx({ images: [v3.image], records, health: [[onTrial.id, pending]] }))).toEqual([superseded]);
    expect(plan(current, [app([v3], 3)], ctx({ images: [v3.image], records, health: [[onTrial.id, healthy]] }))).toEqual([
      superseded,
      { action: 'commit', app: 'shop', container: 'web', appRevision: 3, specHash: specHash(v3), spec: v3, reason: healthy.reason },
    ]);
  });
});

describe('kill-then-download', () => {
  const running = container(v1);

  it('does not stop the running version, nor pull, while the app holds its update lock; a forced revision goes ahead', () => {
    const locked = ctx({ images: [v1.image], records: committedTo(1, v1), locked: true });
    expect(plan([running], [app([v2], 2, 'kill-then-download')], locked)).toEqual([]);
    expect(plan([running], [{ ...app([v2], 2, 'kill-then-download'), forceUpdate: true }], locked)).toEqual([
      {
        action: 'stash',
        app: 'shop',
        container: 'web',
        id: running.id,
        name: stashName('shop_web', specHash(v1)),
        reason: 'kill-then-download: stopping the running version before pulling',
      },
    ]);
  });

  it('with the new image already present, swaps in one step as download-then-kill does', () => {
    expect(
      plan([running], [app([v2], 2, 'kill-then-download')], ctx({ images: [v1.image, v2.image], records: committedTo(1, v1) })),
    ).toEqual([
      {
        action: 'swap',
        app: 'shop',
        container: 'web',
        id: running.id,
        stashName: stashName('shop_web', specHash(v1)),
        incomingName: `shop_web.new-${specHash(v2).slice(0, 8)}`,
        name: 'shop_web',
        appRevision: 2,
        specHash: specHash(v2),
        spec: v2,
        reason: 'spec changed: the new version replaces the running one, kept aside until the new one is healthy',
      },
    ]);
  });

  it('pulls first when the running version was never committed (there is nothing to keep for a rollback)', () => {
    expect(plan([running], [app([v2], 2, 'kill-then-download')], ctx({ images: [v1.image] }))).toEqual([
      {
        action: 'pull',
        app: 'shop',
        container: 'web',
        image: v2.image,
        appRevision: 2,
        reason: 'spec changed: pulling reg.local/web:2 before replacing the running container',
      },
    ]);
  });
});

describe('start-then-kill', () => {
  const records = committedTo(1, v1);

  it('pulls while the old version keeps serving', () => {
    expect(plan([container(v1)], [app([v2], 2, 'start-then-kill')], ctx({ images: [v1.image], records }))).toEqual([
      {
        action: 'pull',
        app: 'shop',
        container: 'web',
        image: v2.image,
        appRevision: 2,
        reason: 'spec changed: pulling reg.local/web:2 before replacing the running container',
      },
    ]);
  });

  it('with the old version not running, swaps it aside for the new one under its name', () => {
    const crashed = container(v1, { state: 'exited', exitCode: 1 });
    expect(plan([crashed], [app([v2], 2, 'start-then-kill')], ctx({ images: [v2.image], records }))).toMatchObject([
      { action: 'swap', id: crashed.id, stashName: stashName('shop_web', specHash(v1)), name: 'shop_web' },
    ]);
    expect(plan([stashed(v1)], [app([v2], 2, 'start-then-kill')], ctx({ images: [v2.image], records }))).toEqual([
      { action: 'run', app: 'shop', container: 'web', appRevision: 2, specHash: specHash(v2), spec: v2, reason: 'not running' },
    ]);
  });
});

describe("an app's gate", () => {
  const records = committedTo(1, v1, db1);
  const web = container(v2, { appRevision: 2 });
  const db = container(db2, { appRevision: 2 });
  const current = [stashed(v1), stashed(db1), web, db];
  const images = [v2.image, db2.image];

  it('rolls the whole app back when one container fails, without committing the healthy one', () => {
    const failed: HealthVerdict = { status: 'unhealthy', reason: 'container db exited with code 1' };
    expect(
      plan(
        current,
        [app([v2, db2], 2)],
        ctx({
          images,
          records,
          health: [
            [web.id, healthy],
            [db.id, failed],
          ],
        }),
      ),
    ).toEqual([{ action: 'rollback', app: 'shop', container: '*', appRevision: 2, reason: 'container db exited with code 1' }]);
  });

  it('names every failed container in the rollback', () => {
    const health: [string, HealthVerdict][] = [
      [web.id, { status: 'unhealthy', reason: 'container web exited with code 2' }],
      [db.id, { status: 'unhealthy', reason: 'container db exited with code 1' }],
    ];
    expect(plan(current, [app([v2, db2], 2)], ctx({ images, records, health }))).toEqual([
      {
        action: 'rollback',
        app: 'shop',
        container: '*',
        appRevision: 2,
        reason: 'container web exited with code 2; container db exited with code 1',
      },
    ]);
  });
});
