/**
 * What a rollout prefetches on a device (broker/dispatcher/prefetch.ts), pure: the rollout's
 * phase and the device's place in it, the images it is told to run already, registry
 * credentials resolved as for containers, and a revision whose credentials cannot be.
 */
import { describe, expect, it } from 'vitest';
import { PrefetchPass } from '../../broker/dispatcher/prefetch.js';
import type { Rollout, RolloutDevice } from '../../broker/dispatcher/rollout-plan.js';
import type { RolloutSnapshot } from '../../broker/dispatcher/rollouts.js';
import { desiredHash, type SecretRefError } from '../../broker/dispatcher/scheduling.js';
import type { StoredApp } from '../../broker/store/apps.js';
import type { AppSpec, ContainerSpec, DesiredApp } from '../../shared/index.js';

const AT = '2026-12-06T00:00:00.000Z';

function app(revision: number, containers: ContainerSpec[]): StoredApp {
  const spec: AppSpec = { name: 'web', scheduling: { selectors: {} }, spec: { containers } };
  return { name: 'web', revision, forced: false, spec, createdAt: AT, updatedAt: AT, scope: null };
}

function rollout(phase: Rollout['phase'], devices: Array<[string, RolloutDevice['state']]>): Rollout {
  return {
    app: 'web',
    revision: 2,
    previousRevision: 1,
    phase,
    policy: { canary: 1 },
    canaryDone: true,
    devices: devices.map(([id, state], i) => ({ id, from: 1, canary: i === 0, state, since: AT })),
    startedAt: AT,
    updatedAt: AT,
  };
}

/** What desiredAppsFor gives a device told to run revision 1. */
function desiredAt(revision: number, images: string[]): DesiredApp {
  return { name: 'web', revision, containers: images.map((image, i) => ({ name: `c${i}`, image })) };
}

const snapshot = (r: Rollout): RolloutSnapshot => new Map([['web', { rollout: r, revisions: new Map() }]]);
const noSecrets = () => undefined;

const V2 = [
  { name: 'web', image: 'registry.local/web:2.0' },
  { name: 'sidecar', image: 'registry.local/proxy:1.0' },
];

describe('PrefetchPass', () => {
  const running = desiredAt(1, ['registry.local/web:1.0', 'registry.local/proxy:1.0']);

  it("gives a pending device the new revision's images it is not told to run already", () => {
    const pass = new PrefetchPass(
      [app(2, V2)],
      snapshot(
        rollout('progressing', [
          ['a', 'healthy'],
          ['b', 'pending'],
        ]),
      ),
      noSecrets,
    );
    const [prefetched] = pass.apply('b', [running]);
    expect(prefetched?.prefetch).toEqual({ revision: 2, images: [{ image: 'registry.local/web:2.0' }] });
    // The app itself is as it was: the device still runs revision 1 until its turn.
    expect(prefetched).toMatchObject({ name: 'web', revision: 1, containers: running.containers });
    // The document's hash covers the prefetch, so its coming is a new document.
    expect(desiredHash([prefetched!])).not.toBe(desiredHash([running]));
  });

  it('keeps prefetching while the rollout is paused', () => {
    const pass = new PrefetchPass(
      [app(2, V2)],
      snapshot(
        rollout('paused', [
          ['a', 'healthy'],
          ['b', 'pending'],
        ]),
      ),
      noSecrets,
    );
    expect(pass.prefetchFor('b', running)?.revision).toBe(2);
  });

  it('gives none to a device updating, healthy, failed or reverted, nor to one the rollout does not hold', () => {
    const r = rollout('progressing', [
      ['a', 'updating'],
      ['b', 'healthy'],
      ['c', 'failed'],
      ['d', 'reverted'],
      ['e', 'pending'],
    ]);
    const pass = new PrefetchPass([app(2, V2)], snapshot(r), noSecrets);
    for (const id of ['a', 'b', 'c', 'd', 'nobody']) expect(pass.prefetchFor(id, running), id).toBeUndefined();
    expect(pass.prefetchFor('e', running)).toBeDefined();
  });

  it('gives none once the rollout is complete or aborted', () => {
    for (const phase of ['complete', 'aborted'] as const) {
      const pass = new PrefetchPass(
        [app(2, V2)],
        snapshot(
          rollout(phase, [
            ['a', 'healthy'],
            ['b', 'pending'],
          ]),
        ),
        noSecrets,
      );
      expect(pass.prefetchFor('b', running), phase).toBeUndefined();
      expect(pass.apply('b', [running])[0]).toBe(running);
    }
  });

  it('gives none when the new revision names only images the device is told to run, or to a device told to run it', () => {
    const same = [{ name: 'web', image: 'registry.local/web:1.0', env: [{ name: 'MODE', value: 'new' }] }];
    const pass = new PrefetchPass(
      [app(2, same)],
      snapshot(
        rollout('progressing', [
          ['a', 'healthy'],
          ['b', 'pending'],
        ]),
      ),
      noSecrets,
    );
    expect(pass.prefetchFor('b', running)).toBeUndefined();
    const changed = new PrefetchPass([app(2, V2)], snapshot(rollout('progressing', [['a', 'pending']])), noSecrets);
    expect(changed.prefetchFor('a', desiredAt(2, ['registry.local/web:2.0']))).toBeUndefined();
  });

  it("gives none where the new revision's images are to come another way than the running revision says (update.pull)", () => {
    const engine = { ...app(2, V2), spec: { ...app(2, V2).spec, spec: { containers: V2, update: { pull: 'engine' as const } } } };
    const pass = new PrefetchPass([engine], snapshot(rollout('progressing', [['b', 'pending']])), noSecrets);
    expect(pass.prefetchFor('b', running)).toBeUndefined();
    expect(pass.prefetchFor('b', { ...running, update: { pull: 'engine' } })).toEqual({
      revision: 2,
      images: [{ image: 'registry.local/web:2.0' }],
    });
    const agent = new PrefetchPass([app(2, V2)], snapshot(rollout('progressing', [['b', 'pending']])), noSecrets);
    expect(agent.prefetchFor('b', { ...running, update: { pull: 'engine' } })).toBeUndefined();
    expect(agent.prefetchFor('b', { ...running, update: { pull: 'agent' } })).toBeDefined();
  });

  it('gives none for an app without a rollout, or whose rollout is of an older revision', () => {
    const pass = new PrefetchPass([app(2, V2)], new Map(), noSecrets);
    expect(pass.prefetchFor('b', running)).toBeUndefined();
    const older = new PrefetchPass([app(3, V2)], snapshot(rollout('progressing', [['b', 'pending']])), noSecrets);
    expect(older.prefetchFor('b', running)).toBeUndefined();
  });

  it('names each image once, with its registry credentials resolved as for the containers', () => {
    const containers: ContainerSpec[] = [
      { name: 'web', image: 'registry.local/web:2.0', auth: { username: 'ci', fromSecret: 'registry-password' } },
      { name: 'worker', image: 'registry.local/web:2.0', auth: { username: 'ci', fromSecret: 'registry-password' } },
      { name: 'metrics', image: 'registry.local/metrics:3', auth: { username: 'ro', password: 'inline' } },
    ];
    const secret = (name: string) => (name === 'registry-password' ? Buffer.from('s3cret') : undefined);
    const pass = new PrefetchPass([app(2, containers)], snapshot(rollout('progressing', [['b', 'pending']])), secret);
    expect(pass.prefetchFor('b', running)).toEqual({
      revision: 2,
      images: [
        { image: 'registry.local/web:2.0', auth: { username: 'ci', password: 's3cret' } },
        { image: 'registry.local/metrics:3', auth: { username: 'ro', password: 'inline' } },
      ],
    });
  });

  it('gives none, and says so once, when the credentials cannot be resolved', () => {
    const containers: ContainerSpec[] = [{ name: 'web', image: 'registry.local/web:2.0', auth: { username: 'ci', fromSecret: 'gone' } }];
    const heard: Array<[string, number, SecretRefError]> = [];
    const pass = new PrefetchPass(
      [app(2, containers)],
      snapshot(
        rollout('progressing', [
          ['b', 'pending'],
          ['c', 'pending'],
        ]),
      ),
      noSecrets,
      (name, revision, err) => heard.push([name, revision, err]),
    );
    expect(pass.prefetchFor('b', running)).toBeUndefined();
    expect(pass.prefetchFor('c', running)).toBeUndefined();
    expect(heard.map(([name, revision, err]) => [name, revision, err.path, err.message])).toEqual([
      ['web', 2, 'spec.containers[0].auth.fromSecret', 'secret "gone" does not exist'],
    ]);
  });
});
