/**
 * The planner with `dependsOn` and init containers: the order of steps when an app starts
 * from nothing and when each update strategy swaps it, tick after tick, feeding back what
 * the previous steps leave on the device. Waits are found by unmetDependencies, as the
 * reconciler finds them, from the health check answers a tick would see.
 */
import { describe, expect, it } from 'vitest';
import type { ProbeResult } from '../../agent/health/verdict.js';
import { type DependencyWait, unmetDependencies, waitKey } from '../../agent/reconcile/dependencies.js';
import { overdueInits } from '../../agent/reconcile/init-plan.js';
import { plan } from '../../agent/reconcile/plan.js';
import type { AppRecord } from '../../agent/reconcile/records.js';
import type { Step } from '../../agent/reconcile/steps.js';
import type { InitContainer, ManagedContainer } from '../../agent/runtime/runtime.js';
import { containerHash, specHash } from '../../agent/runtime/spec-hash.js';
import type { ContainerSpec, DesiredApp } from '../../shared/index.js';
import { type ContextOverrides, committedTo, container, ctx, healthy, pending } from '../support/plan-fixtures.js';

const db1: ContainerSpec = { name: 'db', image: 'reg.local/db:1', healthcheck: { tcp: 'localhost:5432' } };
const db2: ContainerSpec = { ...db1, image: 'reg.local/db:2' };
const web1: ContainerSpec = { name: 'web', image: 'reg.local/web:1', dependsOn: { db: 'healthy' } };
const web2: ContainerSpec = { ...web1, image: 'reg.local/web:2' };
const migrate: ContainerSpec = { name: 'migrate', image: 'reg.local/migrate:1' };
const images = [db1.image, db2.image, web1.image, web2.image, migrate.image];

const app = (containers: ContainerSpec[], revision: number, extra: Partial<DesiredApp> = {}): DesiredApp => ({
  name: 'shop',
  revision,
  // web first: the start order, not the spec's, decides.
  containers: [...containers].reverse(),
  ...extra,
});

interface Tick {
  current?: ManagedContainer[];
  records?: Map<string, AppRecord>;
  probes?: [string, ProbeResult][];
  health?: ContextOverrides['health'];
  inits?: InitContainer[];
  initOutput?: [string, string[]][];
  /** Init containers past the health timeout, with it (ms), as the reconciler finds them. */
  overdue?: [string, number][];
}

function tick(desired: DesiredApp, t: Tick = {}): Step[] {
  const current = t.current ?? [];
  const records = t.records ?? new Map();
  const waits = new Map<string, DependencyWait>();
  for (const [name, wait] of unmetDependencies(desired, current, records, new Map(t.probes ?? []))) {
    waits.set(waitKey(desired.name, name), wait);
  }
  return plan(current, [desired], {
    ...ctx({ images, records, ...(t.health ? { health: t.health } : {}) }),
    waits,
    inits: t.inits ?? [],
    initOutput: new Map(t.initOutput ?? []),
    overdueInits: new Map(t.overdue ?? []),
  });
}

const actions = (steps: Step[]) => steps.map((s) => `${s.action} ${s.container}`);

function initOf(spec: ContainerSpec, revision: number, over: Partial<InitContainer> = {}): InitContainer {
  return {
    id: `init-${spec.name}-${revision}`,
    dockerName: `shop_init_${spec.name}.${revision}`,
    app: 'shop',
    container: spec.name,
    appRevision: revision,
    specHash: specHash(spec),
    image: spec.image,
    state: 'running',
    ...over,
  };
}

describe('start order from nothing', () => {
  const desired = app([db1, web1], 1);

  it('starts the dependency first and the dependent once its health check passes', () => {
    expect(actions(tick(desired))).toEqual(['run db']);
    const db = container(db1);
    expect(actions(tick(desired, { current: [db] }))).toEqual([]);
    expect(actions(tick(desired, { current: [db], probes: [[db.id, { ok: false, detail: 'tcp refused' }]] }))).toEqual([]);
    expect(actions(tick(desired, { current: [db], probes: [[db.id, { ok: true, detail: 'tcp accepted' }]] }))).toEqual(['run web']);
  });

  it('waits for a completed dependency to exit 0, and fails the gate of a new revision when it exits otherwise', () => {
    const seed: ContainerSpec = { name: 'seed', image: migrate.image, restartPolicy: { name: 'no' } };
    const web: ContainerSpec = { ...web1, dependsOn: { seed: 'completed' } };
    const desiredSeed = app([seed, web], 1);
    expect(actions(tick(desiredSeed))).toEqual(['run seed']);
    expect(actions(tick(desiredSeed, { current: [container(seed)] }))).toEqual([]);
    const done = container(seed, { state: 'exited', exitCode: 0 });
    expect(actions(tick(desiredSeed, { current: [done] }))).toEqual(['run web']);
    const failed = container(seed, { state: 'exited', exitCode: 2 });
    const steps = tick(desiredSeed, {
      current: [failed],
      health: [[failed.id, { status: 'unhealthy', reason: 'container seed exited with code 2' }]],
    });
    expect(steps).toContainEqual(
      expect.objectContaining({ action: 'rollback', reason: expect.stringContaining('seed exited with code 2') }),
    );
    expect(actions(steps)).not.toContain('run web');
  });
});

/** A container of `of` as the agent labels it: its hash covers the app's init containers. */
const containerOf = (of: DesiredApp, spec: ContainerSpec, over: Partial<ManagedContainer> = {}): ManagedContainer =>
  container(spec, { specHash: containerHash(of, spec), ...over });

/** `shop` committed to `of` as it is. */
const committedAs = (of: DesiredApp): Map<string, AppRecord> =>
  new Map([
    [
      'shop',
      {
        committed: {
          revision: of.revision,
          containers: Object.fromEntries(of.containers.map((s) => [s.name, { hash: containerHash(of, s), spec: s }])),
        },
      },
    ],
  ]);

describe('init containers', () => {
  const desired = app([db1, web1], 1, { initContainers: [migrate, { ...migrate, name: 'seed' }] });

  it('run one after the other before any container of a new revision, then go', () => {
    expect(tick(desired)).toEqual([expect.objectContaining({ action: 'run-init', container: 'migrate', index: 0, of: 2, appRevision: 1 })]);
    const first = initOf(migrate, 1);
    expect(tick(desired, { inits: [first] })).toEqual([]);
    const firstDone = { ...first, state: 'exited', exitCode: 0 };
    expect(tick(desired, { inits: [firstDone] })).toEqual([expect.objectContaining({ action: 'run-init', container: 'seed', index: 1 })]);
    const second = initOf({ ...migrate, name: 'seed' }, 1, { state: 'exited', exitCode: 0 });
    expect(actions(tick(desired, { inits: [firstDone, second] }))).toEqual(['run db']);
    // Once a container of the revision exists, init is done: the finished ones are removed, the last one says what it printed.
    const steps = tick(desired, {
      current: [containerOf(desired, db1)],
      inits: [firstDone, { ...second, finishedAt: '2030-01-01T00:00:01Z' }],
      initOutput: [[second.id, ['seeded 3 rows']]],
    });
    expect(steps).toEqual([
      expect.objectContaining({ action: 'remove', id: firstDone.id, reason: 'init container finished (exit code 0)' }),
      expect.objectContaining({
        action: 'remove',
        id: second.id,
        reason: 'init container finished (exit code 0); its last lines: seeded 3 rows',
      }),
    ]);
  });

  it('fail the gate of a new revision with the exit code and last lines; the committed version stays', () => {
    const records = committedTo(1, db1, web1);
    const next = app([db2, web2], 2, { initContainers: [migrate] });
    const current = [container(db1), container(web1)];
    expect(actions(tick(next, { current, records }))).toEqual(['run-init migrate']);
    const failed = initOf(migrate, 2, { state: 'exited', exitCode: 3 });
    const steps = tick(next, {
      current,
      records,
      inits: [failed],
      initOutput: [[failed.id, ['connecting', 'schema v7 is newer than this build']]],
    });
    expect(steps).toEqual([
      {
        app: 'shop',
        container: '*',
        action: 'rollback',
        appRevision: 2,
        reason: 'init container migrate exited with code 3; its last lines: connecting | schema v7 is newer than this build',
      },
    ]);
  });

  it('with initPolicy start, run again when the app has no container left, not when one is missing', () => {
    const started = app([db1, web1], 1, { initContainers: [migrate], initPolicy: 'start' });
    const records = committedAs(started);
    expect(actions(tick(started, { records }))).toEqual(['run-init migrate']);
    const db = containerOf(started, db1);
    expect(actions(tick(started, { records, current: [db], probes: [[db.id, { ok: true, detail: 'ok' }]] }))).toEqual(['run web']);
    expect(actions(tick({ ...started, initPolicy: 'revision' }, { records }))).toEqual(['run db']);
  });
});

describe('init containers that hang or change alone', () => {
  const v1 = app([db1, web1], 1, { initContainers: [migrate], update: { healthTimeout: '30s' } });
  const running = [containerOf(v1, db1), containerOf(v1, web1)];

  it('find an init container running past the health timeout, counted from its own start', () => {
    const now = Date.parse('2030-01-01T00:01:00Z');
    const hung = initOf(migrate, 1, { startedAt: '2030-01-01T00:00:29Z' });
    const young = initOf({ ...migrate, name: 'seed' }, 1, { startedAt: '2030-01-01T00:00:31Z' });
    const done = initOf({ ...migrate, name: 'old' }, 1, { startedAt: '2030-01-01T00:00:00Z', state: 'exited', exitCode: 0 });
    const timeout = () => 30_000;
    expect(overdueInits([v1], [hung, young, done], now, timeout)).toEqual(new Map([[hung.id, 30_000]]));
    expect(overdueInits([], [hung], now, timeout)).toEqual(new Map());
  });

  it('fail the gate of a new revision when one hangs past the timeout, then stop it after the rollback', () => {
    const v2 = app([db2, web2], 2, { initContainers: [migrate], update: { healthTimeout: '30s' } });
    const records = committedAs(v1);
    const hung = initOf(migrate, 2, { specHash: specHash(migrate) });
    expect(tick(v2, { current: running, records, inits: [hung] })).toEqual([]);
    expect(tick(v2, { current: running, records, inits: [hung], overdue: [[hung.id, 30_000]] })).toEqual([
      { app: 'shop', container: '*', action: 'rollback', appRevision: 2, reason: 'init container migrate did not finish within 30s' },
    ]);
    const rolledBack = new Map([['shop', { ...records.get('shop')!, rolledBack: { revision: 2, reason: 'hung' } }]]);
    expect(tick(v2, { current: running, records: rolledBack, inits: [hung], overdue: [[hung.id, 30_000]] })).toEqual([
      expect.objectContaining({ action: 'stop', id: hung.id, container: 'migrate' }),
    ]);
  });

  it('a revision that changes only its init containers runs them, then swaps the containers in, in start order', () => {
    const changed: ContainerSpec = { ...migrate, command: ['migrate', '--to', '8'] };
    const v2 = app([db1, web1], 2, { initContainers: [changed], update: { healthTimeout: '30s' } });
    const records = committedAs(v1);
    expect(actions(tick(v2, { current: running, records }))).toEqual(['run-init migrate']);
    const done = initOf(changed, 2, { state: 'exited', exitCode: 0 });
    expect(actions(tick(v2, { current: running, records, inits: [done] }))).toEqual(['swap db']);
    // The same revision without init containers: every hash is the container's own, nothing to swap.
    expect(containerHash({}, db1)).toBe(specHash(db1));
    const bare = app([db1, web1], 1);
    expect(tick(bare, { current: [container(db1), container(web1)], records: committedTo(1, db1, web1) })).toEqual([]);
  });
});

describe('updates keep the order', () => {
  const records = committedTo(1, db1, web1);
  const running = [container(db1), container(web1)];

  it('download-then-kill: the dependency is swapped first, the dependent once the new one is healthy, and the gate covers both', () => {
    const next = app([db2, web2], 2);
    expect(actions(tick(next, { current: running, records }))).toEqual(['swap db']);
    const db = container(db2, { appRevision: 2 });
    const mid = [db, container(web1)];
    expect(actions(tick(next, { current: mid, records, health: [[db.id, pending]] }))).toEqual([]);
    const ok: [string, ProbeResult][] = [[db.id, { ok: true, detail: 'tcp accepted' }]];
    // db passed its gate but is not committed alone: web is swapped now, and the commits wait for it.
    expect(actions(tick(next, { current: mid, records, health: [[db.id, healthy]], probes: ok }))).toEqual(['swap web']);
    const web = container(web2, { appRevision: 2 });
    expect(
      actions(
        tick(next, {
          current: [db, web],
          records,
          health: [
            [db.id, healthy],
            [web.id, healthy],
          ],
          probes: ok,
        }),
      ),
    ).toEqual(['commit db', 'commit web']);
  });

  it('start-then-kill: the new dependent starts beside the old one once the new dependency is healthy', () => {
    const next = app([db2, web2], 2, { update: { strategy: 'start-then-kill' } });
    expect(tick(next, { current: running, records })).toEqual([
      expect.objectContaining({ action: 'run', container: 'db', name: `shop_db.next-${specHash(db2).slice(0, 8)}` }),
    ]);
    const db = container(db2, { appRevision: 2, dockerName: `shop_db.next-${specHash(db2).slice(0, 8)}` });
    expect(actions(tick(next, { current: [...running, db], records, health: [[db.id, pending]] }))).toEqual([]);
    const steps = tick(next, {
      current: [...running, db],
      records,
      health: [[db.id, healthy]],
      probes: [[db.id, { ok: true, detail: 'ok' }]],
    });
    expect(steps).toEqual([
      expect.objectContaining({ action: 'run', container: 'web', name: `shop_web.next-${specHash(web2).slice(0, 8)}` }),
    ]);
  });

  it('kill-then-download: both old versions stop before their pulls as always, the new ones start in order', () => {
    const next = app([db2, web2], 2, { update: { strategy: 'kill-then-download' } });
    const steps = plan(running, [next], { ...ctx({ images: [], records }), waits: new Map(), inits: [] });
    expect(actions(steps)).toEqual(['stash db', 'stash web']);
    const stashedOnly: ManagedContainer[] = [];
    expect(actions(tick(next, { current: stashedOnly, records }))).toEqual(['run db']);
  });

  it('fails the gate when a dependent waited longer than the health timeout', () => {
    const next = app([db2, web2], 2);
    const db = container(db2, { appRevision: 2 });
    const waits = new Map<string, DependencyWait>([
      [waitKey('shop', 'web'), { dependency: 'db', condition: 'healthy', detail: 'tcp refused', timedOut: true, waitedMs: 61_000 }],
    ]);
    const steps = plan([db, container(web1)], [next], { ...ctx({ images, records, health: [[db.id, pending]] }), waits, inits: [] });
    expect(steps).toEqual([
      { app: 'shop', container: '*', action: 'rollback', appRevision: 2, reason: 'web waited 61s for db to be healthy: tcp refused' },
    ]);
  });
});
