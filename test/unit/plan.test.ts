import { describe, expect, it } from 'vitest';
import type { HealthVerdict } from '../../agent/health/verdict.js';
import { plan } from '../../agent/reconcile/plan.js';
import type { AppRecord } from '../../agent/reconcile/records.js';
import { stashName } from '../../agent/reconcile/slot.js';
import { specHash } from '../../agent/runtime/spec-hash.js';
import type { ContainerSpec, DesiredApp } from '../../shared/index.js';
import { committedTo, container, ctx, healthy, pending } from '../support/plan-fixtures.js';

const web: ContainerSpec = { name: 'web', image: 'reg.local/web:1', ports: ['8080:80'] };
const v2: ContainerSpec = { ...web, image: 'reg.local/web:2' };
const app = (containers: ContainerSpec[] = [web], revision = 1, update?: DesiredApp['update']): DesiredApp => ({
  name: 'shop',
  revision,
  containers,
  ...(update ? { update } : {}),
});

const unhealthy: HealthVerdict = { status: 'unhealthy', reason: 'container web exited with code 1' };

describe('plan', () => {
  it('changes nothing while no desired state is known, even with containers running', () => {
    expect(plan([container(web)], undefined, ctx())).toEqual([]);
  });

  it('pulls a missing image before creating anything, with the registry credentials', () => {
    const withAuth = { ...web, auth: { username: 'ci', password: 's3cret' } };
    expect(plan([], [app([withAuth])], ctx())).toEqual([
      {
        action: 'pull',
        app: 'shop',
        container: 'web',
        image: 'reg.local/web:1',
        auth: { username: 'ci', password: 's3cret' },
        appRevision: 1,
        reason: 'image not present',
      },
    ]);
  });

  it("says on the pull step when the app asks for the engine's pull", () => {
    const engine: DesiredApp = { ...app([web]), update: { pull: 'engine' } };
    expect(plan([], [engine], ctx())).toMatchObject([{ action: 'pull', image: web.image, via: 'engine' }]);
    expect(plan([], [app([web])], ctx())[0]).not.toHaveProperty('via');
  });

  it('creates and starts the container in one step once its image is present; one left created is started', () => {
    expect(plan([], [app()], ctx({ images: [web.image] }))).toEqual([
      { action: 'run', app: 'shop', container: 'web', appRevision: 1, specHash: specHash(web), spec: web, reason: 'not running' },
    ]);
    const created = container(web, { state: 'created' });
    expect(plan([created], [app()], ctx({ images: [web.image] }))).toEqual([
      { action: 'start', app: 'shop', container: 'web', id: created.id, reason: 'created but not started' },
    ]);
  });

  describe('health gate', () => {
    it('waits while a new container is on trial', () => {
      expect(plan([container(web)], [app()], ctx({ images: [web.image], health: [[container(web).id, pending]] }))).toEqual([]);
    });

    it('commits it once healthy, naming why', () => {
      expect(plan([container(web)], [app()], ctx({ images: [web.image], health: [[container(web).id, healthy]] }))).toEqual([
        { action: 'commit', app: 'shop', container: 'web', appRevision: 1, specHash: specHash(web), spec: web, reason: healthy.reason },
      ]);
    });

    it('commits the containers of an app together, only when every one is healthy', () => {
      const db: ContainerSpec = { name: 'db', image: 'reg.local/db:1' };
      const both = [container(web), container(db)];
      const some = ctx({
        images: [web.image, db.image],
        health: [
          [both[0]!.id, healthy],
          [both[1]!.id, pending],
        ],
      });
      expect(plan(both, [app([web, db])], some)).toEqual([]);
      const all = ctx({
        images: [web.image, db.image],
        health: [
          [both[0]!.id, healthy],
          [both[1]!.id, healthy],
        ],
      });
      expect(plan(both, [app([web, db])], all).map((s) => `${s.action} ${s.container}`)).toEqual(['commit web', 'commit db']);
    });

    it('keeps a committed running container: adopting it after an agent restart', () => {
      expect(plan([container(web)], [app()], ctx({ images: [web.image], records: committedTo(1, web) }))).toEqual([]);
    });

    it('leaves a crashed committed container to its restart policy', () => {
      const crashed = container(web, { state: 'exited', exitCode: 1 });
      expect(plan([crashed], [app()], ctx({ images: [web.image], records: committedTo(1, web) }))).toEqual([]);
    });
  });

  describe('an update (download-then-kill)', () => {
    const old = container(web);
    const records = committedTo(1, web);
    const stashed = { ...old, state: 'exited', dockerName: stashName('shop_web', specHash(web)) };
    const next = container(v2, { appRevision: 2 });

    it('pulls the new image while the old container keeps running', () => {
      expect(plan([old], [app([v2], 2)], ctx({ images: [web.image], records }))).toEqual([
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

    it('then swaps in one step: the new one created beside, the old one kept aside under another name, the new one started under the real name', () => {
      expect(plan([old], [app([v2], 2)], ctx({ images: [web.image, v2.image], records }))).toEqual([
        {
          action: 'swap',
          app: 'shop',
          container: 'web',
          id: old.id,
          stashName: `shop_web.prev-${specHash(web).slice(0, 8)}`,
          incomingName: `shop_web.new-${specHash(v2).slice(0, 8)}`,
          name: 'shop_web',
          appRevision: 2,
          specHash: specHash(v2),
          spec: v2,
          reason: 'spec changed: the new version replaces the running one, kept aside until the new one is healthy',
        },
      ]);
    });

    it('creates and starts the new one under the real name when the old one is already aside, keeping it', () => {
      expect(plan([stashed], [app([v2], 2)], ctx({ images: [v2.image], records }))).toMatchObject([
        { action: 'run', appRevision: 2, specHash: specHash(v2) },
      ]);
    });

    describe('a swap cut short', () => {
      const incoming = container(v2, { appRevision: 2, state: 'created', dockerName: `shop_web.new-${specHash(v2).slice(0, 8)}` });
      const removeIncoming = {
        action: 'remove',
        app: 'shop',
        container: 'web',
        id: incoming.id,
        reason: 'a swap was cut short before the new version started: it is swapped in again',
      };

      it('after the create, the old one still serving or stopping: removes the new one, then swaps again', () => {
        const images = ctx({ images: [web.image, v2.image], records });
        expect(plan([old, incoming], [app([v2], 2)], images)).toEqual([removeIncoming]);
        expect(plan([{ ...old, state: 'exited' }, incoming], [app([v2], 2)], images)).toEqual([removeIncoming]);
        expect(plan([{ ...old, state: 'exited' }], [app([v2], 2)], images)).toMatchObject([{ action: 'swap', id: old.id }]);
      });

      it('after the stash: removes the new one, then creates and starts it under the real name, the old one kept', () => {
        const images = ctx({ images: [v2.image], records });
        expect(plan([stashed, incoming], [app([v2], 2)], images)).toEqual([removeIncoming]);
        expect(plan([stashed], [app([v2], 2)], images)).toMatchObject([{ action: 'run', specHash: specHash(v2) }]);
      });

      it('after the rename, the start not done: starts it under the real name; one the engine could not start fails its gate', () => {
        const named = { ...incoming, dockerName: 'shop_web' };
        expect(plan([stashed, named], [app([v2], 2)], ctx({ images: [v2.image], records }))).toEqual([
          { action: 'start', app: 'shop', container: 'web', id: incoming.id, reason: 'created but not started' },
        ]);
        const couldNotStart = { ...named, startError: 'exec: "/app": stat /app: no such file or directory' };
        const refused: HealthVerdict = { status: 'unhealthy', reason: `container web could not start: ${couldNotStart.startError}` };
        expect(
          plan([stashed, couldNotStart], [app([v2], 2)], ctx({ images: [v2.image], records, health: [[couldNotStart.id, refused]] })),
        ).toEqual([{ action: 'rollback', app: 'shop', container: '*', appRevision: 2, reason: refused.reason }]);
        const failed = { ...named, state: 'exited', exitCode: 127 };
        const unhealthy: HealthVerdict = { status: 'unhealthy', reason: 'container web exited with code 127' };
        expect(plan([stashed, failed], [app([v2], 2)], ctx({ images: [v2.image], records, health: [[failed.id, unhealthy]] }))).toEqual([
          { action: 'rollback', app: 'shop', container: '*', appRevision: 2, reason: unhealthy.reason },
        ]);
      });
    });

    it('keeps the old one while the new one is on trial, removes it once the new one is committed', () => {
      const trial = ctx({ images: [v2.image], records, health: [[next.id, pending]] });
      expect(plan([stashed, next], [app([v2], 2)], trial)).toEqual([]);
      const done = ctx({ images: [v2.image], records: committedTo(2, v2) });
      expect(plan([stashed, next], [app([v2], 2)], done)).toEqual([
        { action: 'remove', app: 'shop', container: 'web', id: old.id, reason: 'previous version no longer needed' },
      ]);
    });

    it('starts again a new version the engine stopped as it went away, rather than judging or rolling it back', () => {
      const stoppedByEngine: HealthVerdict = { status: 'pending', reason: 'stopped while the engine went away', stoppedByEngine: true };
      const exited = { ...next, state: 'exited', exitCode: 143 };
      expect(plan([stashed, exited], [app([v2], 2)], ctx({ images: [v2.image], records, health: [[next.id, stoppedByEngine]] }))).toEqual([
        { action: 'start', app: 'shop', container: 'web', id: next.id, reason: 'stopped by the engine while on trial' },
      ]);
      // Running again: its trial resumes, the old version still kept aside.
      expect(plan([stashed, next], [app([v2], 2)], ctx({ images: [v2.image], records, health: [[next.id, pending]] }))).toEqual([]);
    });

    it('recreates on an env change even with the same image', () => {
      const envChanged = { ...web, env: [{ name: 'LOG_LEVEL', value: 'debug' }] };
      expect(plan([old], [app([envChanged], 2)], ctx({ images: [web.image], records }))).toMatchObject([{ action: 'swap', id: old.id }]);
    });

    it('kill-then-download stops the old one before pulling', () => {
      const killFirst = app([v2], 2, { strategy: 'kill-then-download' });
      expect(plan([old], [killFirst], ctx({ images: [web.image], records }))).toMatchObject([
        { action: 'stash', id: old.id, reason: 'kill-then-download: stopping the running version before pulling' },
      ]);
      expect(plan([stashed], [killFirst], ctx({ images: [web.image], records }))).toMatchObject([{ action: 'pull', image: v2.image }]);
    });

    describe('that fails its health gate', () => {
      it('marks the revision rolled back, with the reason', () => {
        const failing = ctx({ images: [v2.image], records, health: [[next.id, unhealthy]] });
        expect(plan([stashed, next], [app([v2], 2)], failing)).toEqual([
          { action: 'rollback', app: 'shop', container: '*', appRevision: 2, reason: 'container web exited with code 1' },
        ]);
      });

      const rolledBack = new Map<string, AppRecord>([['shop', { ...records.get('shop'), rolledBack: { revision: 2, reason: 'exited' } }]]);

      it('then removes the new container and restores the old one', () => {
        expect(plan([stashed, next], [app([v2], 2)], ctx({ images: [v2.image], records: rolledBack }))).toEqual([
          { action: 'stop', app: 'shop', container: 'web', id: next.id, reason: 'rolled back: exited' },
        ]);
        expect(plan([stashed, { ...next, state: 'exited' }], [app([v2], 2)], ctx({ records: rolledBack }))).toMatchObject([
          { action: 'remove', id: next.id },
        ]);
        expect(plan([stashed], [app([v2], 2)], ctx({ records: rolledBack }))).toEqual([
          {
            action: 'restore',
            app: 'shop',
            container: 'web',
            id: old.id,
            name: 'shop_web',
            restartPolicy: { name: 'unless-stopped' },
            reason: 'rolling back to the previous version',
          },
        ]);
      });

      it("gives the restored version its own spec's restart policy back (the stash had none)", () => {
        const ownPolicy: ContainerSpec = { ...web, restartPolicy: { name: 'on-failure', maximumRetryCount: 3 } };
        const records = new Map<string, AppRecord>([
          ['shop', { ...committedTo(1, ownPolicy).get('shop'), rolledBack: { revision: 2, reason: 'exited' } }],
        ]);
        const kept = container(ownPolicy, { state: 'exited', dockerName: stashName('shop_web', specHash(ownPolicy)) });
        expect(plan([kept], [app([v2], 2)], ctx({ records }))).toMatchObject([
          { action: 'restore', id: kept.id, restartPolicy: { name: 'on-failure', maximumRetryCount: 3 } },
        ]);
      });

      it('does not retry the rolled-back revision, and recreates the previous version if it was lost', () => {
        expect(plan([old], [app([v2], 2)], ctx({ images: [web.image, v2.image], records: rolledBack }))).toEqual([]);
        expect(plan([], [app([v2], 2)], ctx({ images: [web.image, v2.image], records: rolledBack }))).toEqual([
          {
            action: 'run',
            app: 'shop',
            container: 'web',
            appRevision: 1,
            specHash: specHash(web),
            spec: web,
            reason: 'rolling back: recreating the previous version',
          },
        ]);
      });

      it('tries again when a newer revision arrives', () => {
        const v3 = { ...web, image: 'reg.local/web:3' };
        expect(plan([old], [app([v3], 3)], ctx({ images: [web.image, v3.image], records: rolledBack }))).toMatchObject([
          { action: 'swap', id: old.id },
        ]);
      });

      it('stops a first install that fails, with nothing to go back to', () => {
        const firstFailed = new Map<string, AppRecord>([['shop', { rolledBack: { revision: 1, reason: 'exited' } }]]);
        expect(plan([container(web, { state: 'restarting' })], [app()], ctx({ records: firstFailed }))).toMatchObject([
          { action: 'stop', reason: 'rolled back: no previous version to run' },
        ]);
      });
    });
  });

  it('stops, then removes, containers of apps no longer desired', () => {
    const orphan = container(web, { app: 'legacy', id: 'orphan-1' });
    expect(plan([orphan], [], ctx())).toEqual([
      { action: 'stop', app: 'legacy', container: 'web', id: 'orphan-1', reason: 'app no longer desired on this device' },
    ]);
    expect(plan([{ ...orphan, state: 'exited' }], [], ctx())).toEqual([
      { action: 'remove', app: 'legacy', container: 'web', id: 'orphan-1', reason: 'app no longer desired on this device' },
    ]);
  });

  it('removes a container dropped from an app that is still desired', () => {
    const sidecar: ContainerSpec = { name: 'sidecar', image: 'reg.local/side:1' };
    const steps = plan([container(web), container(sidecar)], [app([web])], ctx({ images: [web.image], records: committedTo(1, web) }));
    expect(steps).toEqual([
      { action: 'stop', app: 'shop', container: 'sidecar', id: container(sidecar).id, reason: 'container removed from the app spec' },
    ]);
  });

  it('removes duplicates of the same spec, keeping the running one', () => {
    const keep = container(web, { id: 'keep' });
    const dup = container(web, { id: 'dup', state: 'exited', dockerName: 'shop_web-copy' });
    expect(plan([dup, keep], [app()], ctx({ images: [web.image], records: committedTo(1, web) }))).toEqual([
      { action: 'remove', app: 'shop', container: 'web', id: 'dup', reason: 'duplicate of a container with the same spec' },
    ]);
  });

  it('plans every container of every app in one batch', () => {
    const db: ContainerSpec = { name: 'db', image: 'reg.local/db:1' };
    const steps = plan([], [app([web, db]), { name: 'other', revision: 3, containers: [db] }], ctx({ images: [db.image] }));
    expect(steps.map((s) => `${s.action} ${s.app}/${s.container}`)).toEqual(['pull shop/web', 'run shop/db', 'run other/db']);
  });

  describe('image garbage collection', () => {
    const v3 = { ...web, image: 'reg.local/web:3' };
    const records = new Map<string, AppRecord>([
      ['shop', { committed: { revision: 3, containers: { web: { hash: specHash(v3), spec: v3 } } }, previousImages: [v2.image] }],
    ]);

    it('removes pulled images no app needs, keeping the current and previous image of each app', () => {
      const steps = plan([container(v3)], [app([v3], 3)], ctx({ images: [v3.image], records, pulled: [web.image, v2.image, v3.image] }));
      expect(steps).toEqual([
        {
          action: 'remove-image',
          app: '*',
          container: '*',
          image: web.image,
          reason: 'no app needs it (each keeps its current and previous image)',
        },
      ]);
    });

    it('never removes an image it did not pull, nor one a container still uses', () => {
      const stopped = container(web, { id: 'old', state: 'exited', dockerName: 'shop_web.prev-x' });
      expect(plan([container(v3)], [app([v3], 3)], ctx({ images: [v3.image], records, pulled: [] }))).toEqual([]);
      expect(plan([container(v3), stopped], [app([v3], 3)], ctx({ images: [v3.image], records, pulled: [web.image] }))).toMatchObject([
        { action: 'remove', id: 'old' },
      ]);
    });

    it('waits until everything else has converged', () => {
      expect(plan([], [app([v3], 3)], ctx({ images: [], records, pulled: [web.image] })).map((s) => s.action)).toEqual(['pull']);
    });
  });

  describe('update lock', () => {
    const old = container(web);
    const records = committedTo(1, web);
    const locks: [string, string][] = [['shop', '/var/lib/docker/volumes/shop-data/_data/updates.lock']];

    it('pulls but does not swap while the app holds its lock', () => {
      expect(plan([old], [app([v2], 2)], ctx({ images: [web.image], records, locks })).map((s) => s.action)).toEqual(['pull']);
      expect(plan([old], [app([v2], 2)], ctx({ images: [web.image, v2.image], records, locks }))).toEqual([]);
    });

    it('swaps at once when the operator forced the revision', () => {
      const forced = { ...app([v2], 2), forceUpdate: true };
      expect(plan([old], [forced], ctx({ images: [web.image, v2.image], records, locks }))).toMatchObject([{ action: 'swap', id: old.id }]);
    });
  });

  describe('disk pre-flight check', () => {
    const old = container(web);
    const records = new Map<string, AppRecord>([
      [
        'shop',
        { committed: { revision: 1, containers: { web: { hash: specHash(web), spec: web } } }, previousImages: ['reg.local/web:0'] },
      ],
    ]);
    const short: [string, string][] = [[v2.image, 'not enough disk']];

    it('does not pull an image that does not fit, and leaves the running version alone', () => {
      expect(plan([old], [app([v2], 2)], ctx({ images: [web.image], records, diskShort: short }))).toEqual([]);
      const killFirst = app([v2], 2, { strategy: 'kill-then-download' });
      expect(plan([old], [killFirst], ctx({ images: [web.image], records, diskShort: short }))).toEqual([]);
    });

    it('first removes images no app needs to make room', () => {
      const steps = plan(
        [old],
        [app([v2], 2)],
        ctx({ images: [web.image], records, diskShort: short, pulled: ['reg.local/web:old', web.image] }),
      );
      expect(steps).toMatchObject([{ action: 'remove-image', image: 'reg.local/web:old' }]);
    });
  });

  describe('start-then-kill', () => {
    const old = container(web);
    const records = committedTo(1, web);
    const update = app([v2], 2, { strategy: 'start-then-kill' });
    const beside = container(v2, { dockerName: `shop_web.next-${specHash(v2).slice(0, 8)}` });

    it('starts the new version beside the running one, under another name', () => {
      expect(plan([old], [update], ctx({ images: [web.image, v2.image], records }))).toEqual([
        {
          action: 'run',
          app: 'shop',
          container: 'web',
          name: `shop_web.next-${specHash(v2).slice(0, 8)}`,
          appRevision: 2,
          specHash: specHash(v2),
          spec: v2,
          reason: 'start-then-kill: starting the new version beside the running one',
        },
      ]);
    });

    it('keeps both running while the new one is on trial, then commits it', () => {
      expect(plan([old, beside], [update], ctx({ images: [v2.image], records, health: [[beside.id, pending]] }))).toEqual([]);
      expect(plan([old, beside], [update], ctx({ images: [v2.image], records, health: [[beside.id, healthy]] }))).toMatchObject([
        { action: 'commit', specHash: specHash(v2) },
      ]);
    });

    it('once committed, stops and removes the old one, then gives the new one its name', () => {
      const done = ctx({ images: [v2.image], records: committedTo(2, v2) });
      expect(plan([old, beside], [update], done)).toEqual([
        { action: 'stop', app: 'shop', container: 'web', id: old.id, reason: 'start-then-kill: the new version is healthy', drain: true },
      ]);
      expect(plan([beside], [update], done)).toEqual([
        {
          action: 'restore',
          app: 'shop',
          container: 'web',
          id: beside.id,
          name: 'shop_web',
          restartPolicy: { name: 'unless-stopped' },
          reason: 'start-then-kill: the new version takes the name',
        },
      ]);
    });

    it('removes the new one and leaves the old one running when the new one fails its gate', () => {
      const rolledBack = new Map<string, AppRecord>([['shop', { ...records.get('shop'), rolledBack: { revision: 2, reason: 'exited' } }]]);
      expect(plan([old, beside], [update], ctx({ images: [v2.image], records: rolledBack }))).toEqual([
        { action: 'stop', app: 'shop', container: 'web', id: beside.id, reason: 'previous version no longer needed' },
      ]);
    });
  });
});
