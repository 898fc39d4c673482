/**
 * One suite for AgentTargetStore, run against every engine (test/integration/store-agent-targets-
 * sqlite and -postgres): what `agent.upgrade` and the planner observe of the stored targets must
 * not depend on where the rows live. Each engine gives a fresh empty store per test, and can open
 * a second handle on the same data: another connection to the file, or another replica's pool on
 * the same database.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentRelease, AgentTargetSpec, AgentTargetStore } from '../../broker/store/agent-targets.js';
import { Cleanup } from './cleanup.js';

/** Opens a handle on one store's data; every call is another handle (connection, pool) on the same rows. */
export type OpenAgentTargets = (now: () => Date) => Promise<AgentTargetStore>;

export interface AgentTargetEngine {
  /** A new empty store; what it opens is released by `cleanup`. */
  create(cleanup: Cleanup): Promise<OpenAgentTargets>;
}

export function release(version: string): AgentRelease {
  const bundle = (arch: string, bytes: number) => ({
    file: `flotilla-${version}-linux-${arch}.tar.gz`,
    sha256: `${arch === 'amd64' ? 'a' : 'b'}${version.replaceAll('.', '')}`.padEnd(64, '0'),
    bytes,
    unpackedBytes: bytes * 2 + 17,
  });
  return { version, bundles: { amd64: bundle('amd64', 41_234_567), arm64: bundle('arm64', 39_876_543) }, healthTimeout: '5m' };
}

function target(name: string, version: string, extra: Partial<AgentTargetSpec> = {}): AgentTargetSpec {
  return { name, scheduling: { selectors: { site: 'lab' } }, release: release(version), ...extra };
}

/** The same object with its keys in reverse order at every level, as another caller might build it. */
function reversed<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .reverse()
      .map(([k, v]) => [k, reversed(v)]),
  ) as T;
}

export function agentTargetSuite(engineName: string, engine: AgentTargetEngine): void {
  describe(`agent targets on ${engineName}`, () => {
    const cleanup = new Cleanup();
    let clock: Date;
    const now = () => clock;
    const tick = (ms: number) => {
      clock = new Date(clock.getTime() + ms);
    };
    let open: OpenAgentTargets;
    let store: AgentTargetStore;

    beforeEach(async () => {
      clock = new Date('2026-03-01T00:00:00.000Z');
      open = await engine.create(cleanup);
      store = await open(now);
    });
    afterEach(() => cleanup.run());

    it('stores a target as its first revision, reads it back whole, and lists targets by name in byte order', async () => {
      const lab = target('site-lab', '0.3.0', {
        rollout: { canary: 1, failureThreshold: 1, batchSize: 5 },
        release: { ...release('0.3.0'), image: 'registry.local/flotilla@sha256:0123' },
      });
      expect(await store.put(lab)).toEqual({
        target: { ...lab, revision: 1, createdAt: '2026-03-01T00:00:00.000Z', updatedAt: '2026-03-01T00:00:00.000Z' },
        changed: true,
      });
      expect(await store.get('site-lab')).toEqual({
        ...lab,
        revision: 1,
        createdAt: '2026-03-01T00:00:00.000Z',
        updatedAt: '2026-03-01T00:00:00.000Z',
      });
      for (const name of ['site-lab2', 'device-gw-1', 'all', 'Site-lab']) await store.put(target(name, '0.3.0'));
      expect((await store.list()).map((t) => [t.name, t.revision])).toEqual([
        ['Site-lab', 5],
        ['all', 4],
        ['device-gw-1', 3],
        ['site-lab', 1],
        ['site-lab2', 2],
      ]);
      // A target without a rollout policy reads back without one, not with `rollout: null`.
      expect(await store.get('all')).not.toHaveProperty('rollout');
      expect(await store.get('nope')).toBeUndefined();
    });

    it('writes nothing for the settings it holds (keys in any order), and a new revision for any change', async () => {
      const first = await store.put(target('all', '0.3.0', { scheduling: { selectors: {} } }));
      tick(1_000);
      const again = await store.put(reversed(target('all', '0.3.0', { scheduling: { selectors: {} } })));
      expect(again).toEqual({ target: first.target, changed: false });
      expect(await store.revision(2)).toBeUndefined();

      // Scheduling, release and rollout each count; the target keeps when it was made.
      const rollout = await store.put(target('all', '0.3.0', { scheduling: { selectors: {} }, rollout: { canary: '10%' } }));
      expect(rollout).toMatchObject({ target: { revision: 2, rollout: { canary: '10%' } }, changed: true });
      tick(1_000);
      const noRollout = await store.put(target('all', '0.3.0', { scheduling: { selectors: {} } }));
      expect(noRollout.changed).toBe(true);
      expect(noRollout.target.revision).toBe(3);
      expect(noRollout.target).not.toHaveProperty('rollout');
      expect((await store.put(target('all', '0.3.0', { scheduling: { devices: ['gw-1'] } }))).target.revision).toBe(4);
      const released = await store.put(target('all', '0.3.1', { scheduling: { devices: ['gw-1'] } }));
      expect(released.target).toMatchObject({
        revision: 5,
        release: { version: '0.3.1' },
        createdAt: '2026-03-01T00:00:00.000Z',
        updatedAt: '2026-03-01T00:00:02.000Z',
      });
      expect((await store.put(target('all', '0.3.1', { scheduling: { devices: ['gw-1'] } }))).changed).toBe(false);
      expect((await store.get('all'))?.revision).toBe(5);
    });

    it('makes a new revision of unchanged settings when asked (a retry), holding the same release', async () => {
      await store.put(target('site-lab', '0.3.0'));
      tick(1_000);
      const retry = await store.put(target('site-lab', '0.3.0'), { evenIfUnchanged: true });
      expect(retry).toMatchObject({ target: { revision: 2, updatedAt: '2026-03-01T00:00:01.000Z' }, changed: true });
      expect(await store.revision(2)).toEqual({
        revision: 2,
        name: 'site-lab',
        release: release('0.3.0'),
        createdAt: '2026-03-01T00:00:01.000Z',
      });
      expect((await store.revision(1))?.release).toEqual((await store.revision(2))?.release);
    });

    it('numbers revisions from one sequence across targets, and keeps each revision as it was stored', async () => {
      expect((await store.put(target('a', '0.3.0'))).target.revision).toBe(1);
      expect((await store.put(target('b', '0.3.0'))).target.revision).toBe(2);
      expect((await store.put(target('a', '0.4.0'))).target.revision).toBe(3);
      expect((await store.put(target('b', '0.3.0'))).changed).toBe(false);
      expect((await store.put(target('b', '0.4.0'))).target.revision).toBe(4);
      expect((await store.revision(1))?.release.version).toBe('0.3.0');
      expect(await store.revision(3)).toMatchObject({ name: 'a', release: { version: '0.4.0' } });
      expect(await store.revision(4)).toMatchObject({ name: 'b', release: { version: '0.4.0' } });
      expect(await store.revision(0)).toBeUndefined();
      expect(await store.revision(5)).toBeUndefined();
      expect(await store.previousRevision('a', 3)).toBe(1);
      expect(await store.previousRevision('a', 1)).toBeUndefined();
      expect(await store.previousRevision('b', 4)).toBe(2);
      expect(await store.previousRevision('b', 100)).toBe(4);
      expect(await store.previousRevision('nope', 4)).toBeUndefined();
    });

    it('deletes a target but keeps its revisions, and never gives a number out again, also to a handle opened later', async () => {
      await store.put(target('a', '0.3.0'));
      await store.put(target('b', '0.3.0'));
      await store.put(target('b', '0.4.0'));
      expect(await store.delete('b')).toBe(true);
      expect(await store.delete('b')).toBe(false);
      expect(await store.delete('nope')).toBe(false);
      expect(await store.get('b')).toBeUndefined();
      expect((await store.list()).map((t) => t.name)).toEqual(['a']);
      // A device that rolled back revision 3 can still be told what revision 3 was.
      expect(await store.revision(3)).toMatchObject({ name: 'b', release: { version: '0.4.0' } });
      expect(await store.previousRevision('b', 3)).toBe(2);

      // The highest number belonged to the deleted target: it is not handed out again.
      tick(1_000);
      const back = await store.put(target('b', '0.3.0'));
      expect(back).toMatchObject({ target: { revision: 4, createdAt: '2026-03-01T00:00:01.000Z' }, changed: true });
      await store.delete('a');
      await store.delete('b');
      const later = await open(now);
      expect(await later.list()).toEqual([]);
      expect((await later.put(target('a', '0.3.0'))).target.revision).toBe(5);
      expect(await later.revision(1)).toMatchObject({ name: 'a', release: { version: '0.3.0' } });
    });

    it('never gives two puts the same number when two handles put at once, and a target holds its highest revision', async () => {
      const other = await open(now);
      const puts = Array.from({ length: 24 }, (_, i) => ({
        handle: i % 2 === 0 ? store : other,
        spec: target(`t${i % 3}`, `0.${i}.0`),
      }));
      const results = await Promise.all(puts.map(({ handle, spec }) => handle.put(spec)));
      expect(results.every((r) => r.changed)).toBe(true);
      const numbers = results.map((r) => r.target.revision);
      expect([...numbers].sort((a, b) => a - b)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
      for (const [i, { spec }] of puts.entries()) {
        expect(await other.revision(numbers[i]!)).toMatchObject({ name: spec.name, release: spec.release });
      }
      // The target set last is the one with the highest revision: each target's row holds its highest.
      for (const name of ['t0', 't1', 't2']) {
        const highest = Math.max(...numbers.filter((_, i) => puts[i]!.spec.name === name));
        const stored = await store.get(name);
        expect({ name, revision: stored?.revision }).toEqual({ name, revision: highest });
        expect(stored?.release).toEqual((await store.revision(highest))?.release);
      }
    });

    it('stores one revision when two handles put the same new settings at once', async () => {
      const other = await open(now);
      const results = await Promise.all([
        store.put(target('site-lab', '0.3.0')),
        other.put(reversed(target('site-lab', '0.3.0'))),
        store.put(target('site-lab', '0.3.0')),
        other.put(target('site-lab', '0.3.0')),
      ]);
      expect(results.filter((r) => r.changed)).toHaveLength(1);
      expect(results.map((r) => r.target.revision)).toEqual([1, 1, 1, 1]);
      expect(await store.revision(2)).toBeUndefined();
    });
  });
}
