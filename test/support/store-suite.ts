/**
 * One suite for the hub's control stores, run against every engine (test/integration/store-sqlite
 * and store-postgres): what a caller of each store interface observes must not depend on where the
 * rows live. Each engine gives a fresh empty store per test, and can open a second handle on the
 * same data: another connection to the file, or another replica's pool on the same database.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AccountStore } from '../../broker/auth/accounts.js';
import { type DeviceCredentialStore, NO_SECRET } from '../../broker/auth/device-credentials.js';
import type { TokenStore } from '../../broker/auth/tokens.js';
import { startRollout } from '../../broker/dispatcher/rollout-plan.js';
import type { AuditStart, AuditStore } from '../../broker/remote/audit-store.js';
import { PruneMismatchError, ScopeConflictError } from '../../broker/store/app-sets.js';
import type { AppStore } from '../../broker/store/apps.js';
import type { DeviceStore } from '../../broker/store/devices.js';
import type { RolloutStore } from '../../broker/store/rollouts.js';
import { SealedDataError, SecretCipher } from '../../broker/store/secret-cipher.js';
import type { SecretStore } from '../../broker/store/secrets.js';
import { type AppSpec, type DesiredState, validateAppSpec } from '../../shared/index.js';
import { Cleanup } from './cleanup.js';
import { appSpec, deviceState } from './fixtures.js';

export interface StoreSet {
  apps: AppStore;
  devices: DeviceStore;
  rollouts: RolloutStore;
  secrets: SecretStore;
  accounts: AccountStore;
  credentials: DeviceCredentialStore;
  tokens: TokenStore;
  audit: AuditStore;
}

export interface StoreOptions {
  now: () => Date;
  cipher: SecretCipher;
  auditMaxRecords?: number;
}

/** Opens a handle on one store's data; every call is another handle (connection, pool) on the same rows. */
export type OpenStores = (options: StoreOptions) => Promise<StoreSet>;

export interface StoreEngine {
  /** A new empty store; what it opens is released by `cleanup`. */
  create(cleanup: Cleanup): Promise<OpenStores>;
}

function spec(name: string, image = 'registry.local/thermo:1.0'): AppSpec {
  const result = validateAppSpec(appSpec(name, { site: 'roof' }, image));
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.value;
}

function desired(deviceId: string, revision: number, apps: { name: string; revision: number }[]): DesiredState {
  return {
    deviceId,
    revision,
    issuedAt: '2026-03-01T00:00:00.000Z',
    apps: apps.map((a) => ({ ...a, containers: [{ name: 'main', image: `registry.local/${a.name}:${a.revision}` }] })),
    signature: { alg: 'ed25519', value: 'c2lnbmVk' },
  };
}

const START: AuditStart = { actor: 'ops', device: 'dev-1', kind: 'exec', what: 'sh -c uptime' };

export function storeSuite(engineName: string, engine: StoreEngine): void {
  describe(`control stores on ${engineName}`, () => {
    const cleanup = new Cleanup();
    let clock: Date;
    const now = () => clock;
    const tick = (ms: number) => {
      clock = new Date(clock.getTime() + ms);
    };
    let cipher: SecretCipher;
    let open: OpenStores;
    let s: StoreSet;

    beforeEach(async () => {
      clock = new Date('2026-03-01T00:00:00.000Z');
      cipher = new SecretCipher(randomBytes(32));
      open = await engine.create(cleanup);
      s = await open({ now, cipher });
    });
    afterEach(() => cleanup.run());

    describe('apps', () => {
      it('numbers revisions by content: the same spec (keys in any order) is unchanged, any change is the next revision', async () => {
        expect(await s.apps.apply(spec('web'))).toEqual({ revision: 1, changed: true });
        const reordered = Object.fromEntries(Object.entries(spec('web')).reverse()) as AppSpec;
        expect(await s.apps.apply(reordered)).toEqual({ revision: 1, changed: false });
        tick(1_000);
        expect(await s.apps.apply(spec('web', 'registry.local/thermo:2.0'))).toEqual({ revision: 2, changed: true });
        expect(await s.apps.apply(spec('web', 'registry.local/thermo:2.0'), 'retry of 2', { evenIfUnchanged: true })).toEqual({
          revision: 3,
          changed: true,
        });
        const app = await s.apps.get('web');
        expect(app).toMatchObject({ name: 'web', revision: 3, forced: false, createdAt: '2026-03-01T00:00:00.000Z' });
        expect(app?.updatedAt).toBe('2026-03-01T00:00:01.000Z');
        expect(app?.spec.spec.containers[0]?.image).toBe('registry.local/thermo:2.0');
        const revisions = await s.apps.revisions('web');
        expect(revisions.map((r) => [r.revision, r.cause])).toEqual([
          [3, 'retry of 2'],
          [2, 'apply'],
          [1, 'apply'],
        ]);
        expect(revisions[2]?.spec).toEqual(spec('web'));
        expect((await s.apps.revision('web', 1))?.specHash).toBe(revisions[2]?.specHash);
        expect(await s.apps.revision('web', 9)).toBeUndefined();
        expect(await s.apps.previousRevision('web', 3)).toBe(2);
        expect(await s.apps.previousRevision('web', 1)).toBeUndefined();
        expect(await s.apps.revisions('nope')).toEqual([]);
      });

      it('lists apps by name in byte order, forces the current revision until the next one, and deletes an app with its revisions', async () => {
        for (const name of ['web2', 'web-2', 'web-10', 'api']) await s.apps.apply(spec(name));
        expect((await s.apps.list()).map((a) => a.name)).toEqual(['api', 'web-10', 'web-2', 'web2']);
        expect(await s.apps.force('api')).toBe(1);
        expect((await s.apps.get('api'))?.forced).toBe(true);
        await s.apps.apply(spec('api', 'registry.local/thermo:2.0'));
        expect((await s.apps.get('api'))?.forced).toBe(false);
        expect(await s.apps.force('nope')).toBeUndefined();
        expect(await s.apps.delete('web2')).toBe(true);
        expect(await s.apps.delete('web2')).toBe(false);
        expect(await s.apps.get('web2')).toBeUndefined();
        expect(await s.apps.revisions('web2')).toEqual([]);
        // A deleted app that comes back starts again at revision 1.
        expect(await s.apps.apply(spec('web2'))).toEqual({ revision: 1, changed: true });
      });

      it('numbers revisions without gaps or duplicates when two replicas apply the same app at once', async () => {
        const other = await open({ now, cipher });
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? s : other).apps.apply(spec('web', `registry.local/thermo:${i}.0`))),
        );
        expect(results.map((r) => r.revision).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
        expect((await other.apps.revisions('web')).map((r) => r.revision)).toEqual(Array.from({ length: 12 }, (_, i) => 12 - i));
      });
    });

    describe('app sets', () => {
      /** Each app's current revision and scope, and how many revisions it has: what a set may change. */
      async function fleet(store: StoreSet = s) {
        const apps = await store.apps.list();
        return Promise.all(
          apps.map(async (a) => ({
            name: a.name,
            revision: a.revision,
            scope: a.scope,
            revisions: (await store.apps.revisions(a.name)).length,
          })),
        );
      }

      it('stores a revision only for new and changed specs, with the source, and records the scope on every app of the set', async () => {
        await s.apps.apply(spec('api'));
        await s.apps.apply(spec('db'));
        tick(1_000);
        const outcome = await s.apps.applySet({
          specs: [spec('web'), spec('api', 'registry.local/thermo:2.0'), spec('db')],
          scope: 'team-a',
          source: 'git:0123abc',
        });
        expect(outcome).toEqual({
          dryRun: false,
          items: [
            { name: 'web', action: 'created', revision: 1, previousRevision: null, scope: 'team-a', previousScope: null },
            {
              name: 'api',
              action: 'configured',
              revision: 2,
              previousRevision: 1,
              scope: 'team-a',
              previousScope: null,
              replaced: spec('api'),
            },
            { name: 'db', action: 'unchanged', revision: 1, previousRevision: 1, scope: 'team-a', previousScope: null },
          ],
          pruned: [],
        });
        expect(await fleet()).toEqual([
          { name: 'api', revision: 2, scope: 'team-a', revisions: 2 },
          { name: 'db', revision: 1, scope: 'team-a', revisions: 1 },
          { name: 'web', revision: 1, scope: 'team-a', revisions: 1 },
        ]);
        expect((await s.apps.revisions('api')).map((r) => [r.revision, r.cause, r.source, r.createdAt])).toEqual([
          [2, 'apply', 'git:0123abc', '2026-03-01T00:00:01.000Z'],
          [1, 'apply', null, '2026-03-01T00:00:00.000Z'],
        ]);
        // db was only adopted into the scope: no revision, and its time of change is the one it had.
        expect(await s.apps.get('db')).toMatchObject({ revision: 1, scope: 'team-a', updatedAt: '2026-03-01T00:00:00.000Z' });
        expect((await s.apps.revision('web', 1))?.spec).toEqual(spec('web'));

        // The same set again changes nothing; a set without a scope leaves every app's as it is; a single apply too.
        const again = await s.apps.applySet({
          specs: [spec('web'), spec('api', 'registry.local/thermo:2.0'), spec('db')],
          source: 'git:4567def',
        });
        expect(again.items.map((i) => [i.name, i.action, i.revision, i.scope])).toEqual([
          ['web', 'unchanged', 1, 'team-a'],
          ['api', 'unchanged', 2, 'team-a'],
          ['db', 'unchanged', 1, 'team-a'],
        ]);
        await s.apps.apply(spec('web', 'registry.local/thermo:3.0'));
        expect(await s.apps.get('web')).toMatchObject({ revision: 2, scope: 'team-a' });
        expect((await s.apps.revision('web', 2))?.source).toBeNull();
        expect((await s.apps.list({ scope: 'team-a' })).map((a) => a.name)).toEqual(['api', 'db', 'web']);
        expect(await s.apps.list({ scope: 'team-b' })).toEqual([]);
      });

      it('refuses a set naming an app of another scope, or pruning other apps than expected, and then stores nothing at all', async () => {
        await s.apps.applySet({ specs: [spec('web'), spec('api')], scope: 'team-a' });
        await s.apps.applySet({ specs: [spec('db')], scope: 'team-b' });
        const before = await fleet();

        const conflict = s.apps.applySet({
          specs: [spec('new'), spec('web', 'registry.local/thermo:2.0'), spec('db', 'registry.local/thermo:2.0')],
          scope: 'team-b',
          source: 'git:1',
        });
        await expect(conflict).rejects.toBeInstanceOf(ScopeConflictError);
        await expect(conflict).rejects.toMatchObject({ scope: 'team-b', conflicts: [{ index: 1, name: 'web', scope: 'team-a' }] });
        expect(await fleet()).toEqual(before);

        const mismatch = s.apps.applySet({ specs: [spec('new'), spec('web')], scope: 'team-a', prune: true, expectPruned: [] });
        await expect(mismatch).rejects.toBeInstanceOf(PruneMismatchError);
        await expect(mismatch).rejects.toMatchObject({ expected: [], actual: ['api'] });
        expect(await fleet()).toEqual(before);
      });

      it('prunes only the apps of its scope that the set does not name, each with its revisions', async () => {
        await s.apps.applySet({ specs: [spec('web'), spec('api'), spec('old')], scope: 'team-a' });
        await s.apps.apply(spec('old', 'registry.local/thermo:2.0'));
        await s.apps.applySet({ specs: [spec('db')], scope: 'team-b' });
        await s.apps.apply(spec('by-hand'));

        const outcome = await s.apps.applySet({
          specs: [spec('web'), spec('new')],
          scope: 'team-a',
          prune: true,
          expectPruned: ['old', 'api'],
        });
        expect(outcome.pruned).toEqual([
          { name: 'api', revision: 1, scope: 'team-a', specHash: expect.any(String), spec: spec('api') },
          { name: 'old', revision: 2, scope: 'team-a', specHash: expect.any(String), spec: spec('old', 'registry.local/thermo:2.0') },
        ]);
        expect(await fleet()).toEqual([
          { name: 'by-hand', revision: 1, scope: null, revisions: 1 },
          { name: 'db', revision: 1, scope: 'team-b', revisions: 1 },
          { name: 'new', revision: 1, scope: 'team-a', revisions: 1 },
          { name: 'web', revision: 1, scope: 'team-a', revisions: 1 },
        ]);
        expect(await s.apps.revisions('old')).toEqual([]);
        // A pruned app applied again starts over at revision 1.
        expect(await s.apps.apply(spec('old'))).toEqual({ revision: 1, changed: true });
      });

      it('answers a dry run as the apply that follows it, and stores nothing for it', async () => {
        await s.apps.applySet({ specs: [spec('web'), spec('api'), spec('old')], scope: 'team-a' });
        await s.apps.apply(spec('loose'));
        const before = await fleet();
        const set = {
          specs: [spec('web', 'registry.local/thermo:2.0'), spec('api'), spec('loose'), spec('new')],
          scope: 'team-a',
          prune: true,
          source: 'git:89ab',
        };
        tick(5_000);
        const dry = await s.apps.applySet({ ...set, dryRun: true });
        expect(await fleet()).toEqual(before);
        expect(await s.apps.get('new')).toBeUndefined();
        expect(await s.apps.get('loose')).toMatchObject({ scope: null });

        const applied = await s.apps.applySet(set);
        expect(dry).toEqual({ ...applied, dryRun: true });
        expect(dry.items.map((i) => [i.name, i.action, i.revision])).toEqual([
          ['web', 'configured', 2],
          ['api', 'unchanged', 1],
          ['loose', 'unchanged', 1],
          ['new', 'created', 1],
        ]);
        expect(dry.pruned.map((p) => p.name)).toEqual(['old']);
        expect(await fleet()).toEqual([
          { name: 'api', revision: 1, scope: 'team-a', revisions: 1 },
          { name: 'loose', revision: 1, scope: 'team-a', revisions: 1 },
          { name: 'new', revision: 1, scope: 'team-a', revisions: 1 },
          { name: 'web', revision: 2, scope: 'team-a', revisions: 2 },
        ]);
      });

      it('numbers revisions without gaps when two replicas apply overlapping sets at once, in opposite orders, pruning the same scope', async () => {
        const other = await open({ now, cipher });
        const names = ['a', 'b', 'c', 'd'];
        await s.apps.applySet({ specs: names.map((n) => spec(n)), scope: 'team' });
        const rounds = 8;
        const results = await Promise.all(
          Array.from({ length: rounds }, (_, i) => {
            const order = i % 2 === 0 ? names : [...names].reverse();
            return (i % 2 === 0 ? s : other).apps.applySet({
              specs: order.map((n) => spec(n, `registry.local/thermo:${i + 2}.0`)),
              scope: 'team',
              prune: true,
              source: `git:${i}`,
            });
          }),
        );
        for (const result of results) expect(result.items.every((item) => item.action === 'configured')).toBe(true);
        for (const name of names) {
          const revisions = await other.apps.revisions(name);
          expect(
            revisions.map((r) => r.revision),
            name,
          ).toEqual(Array.from({ length: rounds + 1 }, (_, i) => rounds + 1 - i));
          // Each revision was made by one set, recorded as its source, and that set answered it.
          for (const revision of revisions.slice(0, rounds)) {
            const set = Number(revision.source?.slice('git:'.length));
            expect(results[set]?.items.find((item) => item.name === name)?.revision, `${name} ${revision.revision}`).toBe(
              revision.revision,
            );
          }
        }
        // A set is one step of every app: the sets took turns, none interleaved with another.
        expect(results.map((r) => new Set(r.items.map((item) => item.revision)).size)).toEqual(Array(rounds).fill(1));

        // Without a scope no set holds a lock over all: sets in opposite orders and single applies wait on each app in turn.
        const loose = await Promise.all(
          Array.from({ length: rounds }, (_, i) => {
            const store = i % 2 === 0 ? s : other;
            if (i % 4 === 3) return store.apps.apply(spec('c', `registry.local/thermo:${i + 20}.0`)).then(() => undefined);
            const order = i % 2 === 0 ? names : [...names].reverse();
            return store.apps.applySet({ specs: order.map((n) => spec(n, `registry.local/thermo:${i + 20}.0`)) });
          }),
        );
        expect(loose.filter((r) => r !== undefined)).toHaveLength(6);
        for (const name of names) {
          const expected = name === 'c' ? 2 * rounds + 1 : rounds + 7;
          expect(
            (await s.apps.revisions(name)).map((r) => r.revision),
            name,
          ).toEqual(Array.from({ length: expected }, (_, i) => expected - i));
        }
      });
    });

    describe('devices', () => {
      it('creates a device once, on first contact, with nothing known about it yet', async () => {
        expect(await s.devices.ensure('dev-1')).toBe(true);
        expect(await s.devices.ensure('dev-1')).toBe(false);
        expect(await s.devices.get('dev-1')).toEqual({
          id: 'dev-1',
          operatorLabels: {},
          reportedLabels: {},
          labels: {},
          online: false,
          lastSeen: null,
          state: null,
          observedRevision: null,
          desiredRevision: 0,
          desiredHash: null,
          desired: null,
          createdAt: '2026-03-01T00:00:00.000Z',
        });
        expect(await s.devices.get('nope')).toBeUndefined();
        expect(await s.devices.desiredApps('dev-1')).toBeNull();
        expect(await s.devices.desiredApps('nope')).toBeNull();
      });

      it('records reported state, operator labels over reported ones, and presence', async () => {
        await s.devices.ensure('dev-1');
        tick(5_000);
        const state = deviceState('dev-1', { observedRevision: 4, labels: { site: 'roof', arch: 'arm64' } });
        await s.devices.recordState(state);
        await s.devices.setOperatorLabels('dev-1', { site: 'cellar', arch: null });
        const device = await s.devices.get('dev-1');
        expect(device).toMatchObject({
          online: true,
          lastSeen: '2026-03-01T00:00:05.000Z',
          observedRevision: 4,
          reportedLabels: { site: 'roof', arch: 'arm64' },
          operatorLabels: { site: 'cellar', arch: null },
          labels: { site: 'cellar' },
        });
        expect(device?.state).toEqual(state);
        // The fleet view's rows: JSON columns as the text stored, so an unchanged row compares equal as strings.
        const [row] = await s.devices.fleetRows();
        expect(row).toEqual({
          id: 'dev-1',
          online: 1,
          last_seen: '2026-03-01T00:00:05.000Z',
          operator_labels: JSON.stringify({ site: 'cellar', arch: null }),
          reported_labels: JSON.stringify({ site: 'roof', arch: 'arm64' }),
          state: JSON.stringify(state),
          desired_revision: 0,
        });

        tick(5_000);
        await s.devices.recordOnline('dev-1', false);
        expect(await s.devices.get('dev-1')).toMatchObject({ online: false, lastSeen: '2026-03-01T00:00:05.000Z' });
        expect(await s.devices.recordDisconnected('dev-1')).toBe(false);
        await s.devices.recordOnline('dev-1', true);
        expect(await s.devices.get('dev-1')).toMatchObject({ online: true, lastSeen: '2026-03-01T00:00:10.000Z' });
        expect(await s.devices.recordDisconnected('dev-1')).toBe(true);
        expect(await s.devices.recordDisconnected('nope')).toBe(false);
      });

      it('keeps the newest last-seen time of a batch, never an older one, and ignores unknown devices', async () => {
        for (const id of ['dev-b', 'dev-a', 'dev-c']) await s.devices.ensure(id);
        await s.devices.recordLastSeen(
          new Map([
            ['dev-a', '2026-03-01T00:01:00.000Z'],
            ['dev-b', '2026-03-01T00:02:00.000Z'],
            ['ghost', '2026-03-01T00:03:00.000Z'],
          ]),
        );
        await s.devices.recordLastSeen(
          new Map([
            ['dev-a', '2026-03-01T00:00:30.000Z'],
            ['dev-b', '2026-03-01T00:05:00.000Z'],
          ]),
        );
        await s.devices.recordLastSeen(new Map());
        const seen = Object.fromEntries((await s.devices.list()).map((d) => [d.id, d.lastSeen]));
        expect(seen).toEqual({ 'dev-a': '2026-03-01T00:01:00.000Z', 'dev-b': '2026-03-01T00:05:00.000Z', 'dev-c': null });
        expect(await s.devices.get('ghost')).toBeUndefined();
      });

      it('lists devices and presence by id in byte order, and marks every device offline at once', async () => {
        for (const id of ['gw.2', 'gw-2', 'gw_2', 'gw-10']) {
          await s.devices.ensure(id);
          await s.devices.recordOnline(id, true);
        }
        expect((await s.devices.list()).map((d) => d.id)).toEqual(['gw-10', 'gw-2', 'gw.2', 'gw_2']);
        // Each with when it was last heard from, as the device's row has it.
        const devices = await s.devices.list();
        expect(devices.every((d) => d.lastSeen !== null)).toBe(true);
        expect(await s.devices.presence()).toEqual(devices.map((d) => ({ id: d.id, online: true, lastSeen: d.lastSeen })));
        await s.devices.markAllOffline();
        expect((await s.devices.presence()).every((p) => !p.online)).toBe(true);
      });

      it('keeps the desired document sealed, and opens it only with the same key', async () => {
        await s.devices.ensure('dev-1');
        const doc = desired('dev-1', 7, [
          { name: 'web', revision: 3 },
          { name: 'api', revision: 1 },
        ]);
        await s.devices.recordDesired(doc, 'hash-of-doc');
        expect(await s.devices.get('dev-1')).toMatchObject({ desiredRevision: 7, desiredHash: 'hash-of-doc', desired: doc });
        expect(await s.devices.desiredApps('dev-1')).toEqual([
          { name: 'web', revision: 3 },
          { name: 'api', revision: 1 },
        ]);
        expect((await s.devices.fleetRows())[0]?.desired_revision).toBe(7);
        const wrongKey = await open({ now, cipher: new SecretCipher(randomBytes(32)) });
        await expect(wrongKey.devices.get('dev-1')).rejects.toBeInstanceOf(SealedDataError);
      });

      it('records a state report in one call: creates the device on first contact and says what the report replaced', async () => {
        const first = deviceState('dev-r', { observedRevision: 0, labels: { site: 'roof' } });
        expect(await s.devices.recordStateReport(first)).toEqual({
          isNew: true,
          previousLabels: {},
          desiredRevision: 0,
          desiredIssued: false,
          reportedDownloads: false,
        });
        expect(await s.devices.get('dev-r')).toMatchObject({
          reportedLabels: { site: 'roof' },
          online: true,
          lastSeen: '2026-03-01T00:00:00.000Z',
          state: first,
          observedRevision: 0,
          createdAt: '2026-03-01T00:00:00.000Z',
        });
        await s.devices.recordDesired(desired('dev-r', 4, [{ name: 'web', revision: 2 }]), 'h4');
        await s.devices.setOperatorLabels('dev-r', { zone: 'a' });
        const downloads = { bytes: 0, reusedBytes: 0, resentBytes: 0, images: 0, since: '2026-03-01T00:00:00.000Z' };
        const second = deviceState('dev-r', { observedRevision: 4, labels: { site: 'attic' }, downloads });
        expect(await s.devices.recordStateReport(second)).toEqual({
          isNew: false,
          previousLabels: { site: 'roof' },
          desiredRevision: 4,
          desiredIssued: true,
          reportedDownloads: false,
        });
        // What the report replaced carried `downloads`: its agent can be sent a prefetch.
        expect(await s.devices.recordStateReport(second)).toMatchObject({ reportedDownloads: true });
        const { downloads: _, ...withoutDownloads } = second;
        expect(await s.devices.recordStateReport(withoutDownloads)).toMatchObject({ reportedDownloads: true });
        expect(await s.devices.recordStateReport(second)).toMatchObject({ reportedDownloads: false });
        // The report's columns only: the operator's labels and the desired document stay.
        expect(await s.devices.get('dev-r')).toMatchObject({
          reportedLabels: { site: 'attic' },
          labels: { site: 'attic', zone: 'a' },
          state: second,
          observedRevision: 4,
          desiredRevision: 4,
          desiredHash: 'h4',
          createdAt: '2026-03-01T00:00:00.000Z',
        });
        // A device created by its status first is not new to its first report, and has no document yet.
        await s.devices.ensure('dev-s');
        expect(await s.devices.recordStateReport(deviceState('dev-s'))).toMatchObject({
          isNew: false,
          desiredIssued: false,
          desiredRevision: 0,
        });
      });

      it('lists every device for planning as list() has it, without its desired document', async () => {
        for (const id of ['dev-b', 'dev-a', 'dev-c']) await s.devices.recordStateReport(deviceState(id, { labels: { site: id } }));
        await s.devices.recordDesired(desired('dev-a', 2, [{ name: 'web', revision: 1 }]), 'hash-a');
        await s.devices.setOperatorLabels('dev-c', { zone: 'z' });
        const full = await s.devices.list();
        expect(await s.devices.listForPlanning()).toEqual(full.map(({ desired: _, ...device }) => device));
        expect((await s.devices.listForPlanning())[0]).toMatchObject({ id: 'dev-a', desiredRevision: 2, desiredHash: 'hash-a' });
      });

      it('stores a chunk of desired documents at once, sealed, and leaves the other devices alone', async () => {
        for (const id of ['dev-1', 'dev-2', 'dev-3']) await s.devices.ensure(id);
        const one = desired('dev-1', 3, [{ name: 'web', revision: 1 }]);
        const two = desired('dev-2', 5, [{ name: 'api', revision: 2 }]);
        await s.devices.recordDesiredMany([
          { desired: one, hash: 'hash-1' },
          { desired: two, hash: 'hash-2' },
        ]);
        await s.devices.recordDesiredMany([]);
        expect(await s.devices.get('dev-1')).toMatchObject({ desiredRevision: 3, desiredHash: 'hash-1', desired: one });
        expect(await s.devices.get('dev-2')).toMatchObject({ desiredRevision: 5, desiredHash: 'hash-2', desired: two });
        expect(await s.devices.get('dev-3')).toMatchObject({ desiredRevision: 0, desiredHash: null, desired: null });
        expect(await s.devices.desiredApps('dev-2')).toEqual([{ name: 'api', revision: 2 }]);
        const wrongKey = await open({ now, cipher: new SecretCipher(randomBytes(32)) });
        await expect(wrongKey.devices.get('dev-1')).rejects.toBeInstanceOf(SealedDataError);
      });

      it('counts devices per app and reported phase, offline devices under offline, ordered by app then phase', async () => {
        const report = (id: string, apps: [string, 'running' | 'failed'][]) =>
          deviceState(id, { apps: apps.map(([name, phase]) => ({ name, revision: 1, phase, containers: [] })) });
        for (const id of ['d1', 'd2', 'd3', 'd4']) await s.devices.ensure(id);
        await s.devices.recordState(
          report('d1', [
            ['web', 'running'],
            ['api', 'running'],
          ]),
        );
        await s.devices.recordState(report('d2', [['web', 'failed']]));
        await s.devices.recordState(report('d3', [['web', 'running']]));
        await s.devices.recordState(report('d4', [['Web', 'running']]));
        await s.devices.recordOnline('d3', false);
        expect(await s.devices.appPhases()).toEqual([
          { app: 'Web', phase: 'running', devices: 1 },
          { app: 'api', phase: 'running', devices: 1 },
          { app: 'web', phase: 'failed', devices: 1 },
          { app: 'web', phase: 'offline', devices: 1 },
          { app: 'web', phase: 'running', devices: 1 },
        ]);
      });
    });

    describe('rollouts', () => {
      it('keeps the newest rollout of each app whole, lists those still moving by app, and deletes one', async () => {
        const rollout = (app: string) =>
          startRollout(
            { app, revision: 2, previousRevision: 1, policy: { canary: 1 }, devices: [{ id: 'dev-1', from: 1 }] },
            () => undefined,
            now(),
          );
        const b = rollout('b-app');
        await s.rollouts.save(b);
        await s.rollouts.save(rollout('a-app'));
        await s.rollouts.save({ ...rollout('c-app'), phase: 'complete' });
        await s.rollouts.save({ ...rollout('d-app'), phase: 'paused' });
        expect(await s.rollouts.get('b-app')).toEqual(b);
        expect((await s.rollouts.active()).map((r) => [r.app, r.phase])).toEqual([
          ['a-app', 'progressing'],
          ['b-app', 'progressing'],
          ['d-app', 'paused'],
        ]);
        await s.rollouts.save({ ...b, revision: 3, phase: 'aborted' });
        expect(await s.rollouts.get('b-app')).toMatchObject({ revision: 3, phase: 'aborted' });
        await s.rollouts.delete('a-app');
        expect(await s.rollouts.get('a-app')).toBeUndefined();
        expect((await s.rollouts.active()).map((r) => r.app)).toEqual(['d-app']);
      });

      it('replaces a rollout only while it is still the one read: of two replicas writing from one read, one wins and the other is told', async () => {
        const other = await open({ now, cipher });
        const read = startRollout(
          { app: 'web', revision: 2, previousRevision: 1, policy: { canary: 1 }, devices: [{ id: 'dev-1', from: 1 }] },
          () => undefined,
          now(),
        );
        expect(await s.rollouts.save(read)).toBe(true);
        const paused = { ...read, phase: 'paused' as const, updatedAt: '2026-03-01T00:00:01.000Z' };
        const advanced = { ...read, canaryDone: true, updatedAt: '2026-03-01T00:00:02.000Z' };
        const [pausedWon, advancedWon] = await Promise.all([s.rollouts.save(paused, read), other.rollouts.save(advanced, read)]);
        expect([pausedWon, advancedWon].filter(Boolean)).toHaveLength(1);
        expect(await other.rollouts.get('web')).toEqual(pausedWon ? paused : advanced);
        // The loser's step, taken again on what is stored now, goes through.
        const winner = pausedWon ? paused : advanced;
        const again = { ...winner, reason: 'taken again', updatedAt: '2026-03-01T00:00:03.000Z' };
        expect(await (pausedWon ? other : s).rollouts.save(again, winner)).toBe(true);
        expect(await s.rollouts.get('web')).toEqual(again);
        // Nothing is written over a rollout that is gone.
        await s.rollouts.delete('web');
        expect(await s.rollouts.save(paused, again)).toBe(false);
        expect(await s.rollouts.get('web')).toBeUndefined();
      });
    });

    describe('secrets', () => {
      it('keeps any bytes sealed, lists names only, and overwrites and deletes by name', async () => {
        const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x0a]);
        await s.secrets.set('b-key', bytes);
        tick(1_000);
        await s.secrets.set('a-token', Buffer.from('hunter2'));
        expect(await s.secrets.get('b-key')).toEqual(bytes);
        expect(await s.secrets.list()).toEqual([
          { name: 'a-token', updatedAt: '2026-03-01T00:00:01.000Z' },
          { name: 'b-key', updatedAt: '2026-03-01T00:00:00.000Z' },
        ]);
        await s.secrets.set('a-token', Buffer.from('correct horse'));
        expect((await s.secrets.get('a-token'))?.toString()).toBe('correct horse');
        expect(await s.secrets.get('nope')).toBeUndefined();
        expect(await s.secrets.delete('a-token')).toBe(true);
        expect(await s.secrets.delete('a-token')).toBe(false);
        const wrongKey = await open({ now, cipher: new SecretCipher(randomBytes(32)) });
        await expect(wrongKey.secrets.get('b-key')).rejects.toBeInstanceOf(SealedDataError);
      });
    });

    describe('service accounts', () => {
      it('creates an account once with a key naming it, counts admins, lists by name and deletes', async () => {
        const key = await s.accounts.create('deployer', 'operator');
        expect(key).toMatch(/^deployer\.[A-Za-z0-9_-]{43}$/);
        expect(await s.accounts.create('deployer', 'admin')).toBeUndefined();
        await s.accounts.create('admin-2', 'admin');
        await s.accounts.create('admin', 'admin');
        expect(await s.accounts.admins()).toBe(2);
        expect((await s.accounts.list()).map((a) => [a.name, a.role])).toEqual([
          ['admin', 'admin'],
          ['admin-2', 'admin'],
          ['deployer', 'operator'],
        ]);
        const stored = await s.accounts.get('deployer');
        expect(stored).toMatchObject({ name: 'deployer', role: 'operator', createdAt: '2026-03-01T00:00:00.000Z' });
        expect(stored?.keyHash).not.toContain(key!.slice('deployer.'.length));
        expect(await s.accounts.delete('deployer', { unlessRole: 'operator' })).toBe(false);
        expect(await s.accounts.delete('admin-2', { unlessRole: 'operator' })).toBe(true);
        expect(await s.accounts.delete('deployer')).toBe(true);
        expect(await s.accounts.delete('deployer')).toBe(false);
        expect(await s.accounts.get('deployer')).toBeUndefined();
        expect(await s.accounts.admins()).toBe(1);
      });
    });

    describe('device credentials', () => {
      it('stores a secret hash once per id, and a revocation keeps the id claimed with its first time', async () => {
        expect(await s.credentials.create('dev-1', 'hash-1')).toBe(true);
        expect(await s.credentials.create('dev-1', 'hash-2')).toBe(false);
        expect(await s.credentials.get('dev-1')).toEqual({
          deviceId: 'dev-1',
          secretHash: 'hash-1',
          createdAt: '2026-03-01T00:00:00.000Z',
          revokedAt: null,
        });
        expect(await s.credentials.revokedAt('dev-1')).toBeUndefined();
        tick(1_000);
        await s.credentials.revoke('dev-1');
        tick(1_000);
        await s.credentials.revoke('dev-1');
        expect(await s.credentials.revokedAt('dev-1')).toBe('2026-03-01T00:00:01.000Z');
        await s.credentials.revoke('never-registered');
        expect(await s.credentials.get('never-registered')).toMatchObject({ secretHash: NO_SECRET, revokedAt: '2026-03-01T00:00:02.000Z' });
        expect(await s.credentials.create('never-registered', 'hash-3')).toBe(false);
        expect(await s.credentials.revoked()).toEqual(
          new Map([
            ['dev-1', '2026-03-01T00:00:01.000Z'],
            ['never-registered', '2026-03-01T00:00:02.000Z'],
          ]),
        );
      });
    });

    describe('registration tokens', () => {
      it('creates a token shown once, counts its uses up to the limit, gives one back, and refuses it revoked or expired', async () => {
        const { token, stored } = await s.tokens.create({ labels: { site: 'roof' }, maxUses: 2, expiresInSeconds: 60 });
        expect(token).toMatch(/^flt-reg-/);
        expect(stored).toEqual({
          id: stored.id,
          labels: { site: 'roof' },
          maxUses: 2,
          uses: 0,
          expiresAt: '2026-03-01T00:01:00.000Z',
          revokedAt: null,
          createdAt: '2026-03-01T00:00:00.000Z',
        });
        expect(await s.tokens.check(token)).toEqual({ ok: true, token: stored });
        expect(await s.tokens.check('flt-reg-not-a-token')).toEqual({ ok: false, reason: 'unknown' });
        expect(await s.tokens.consume(stored.id)).toBe(true);
        expect(await s.tokens.consume(stored.id)).toBe(true);
        expect(await s.tokens.consume(stored.id)).toBe(false);
        expect(await s.tokens.check(token)).toEqual({ ok: false, reason: 'used up' });
        await s.tokens.refund(stored.id);
        expect((await s.tokens.get(stored.id))?.uses).toBe(1);
        tick(61_000);
        expect(await s.tokens.check(token)).toEqual({ ok: false, reason: 'expired' });
        expect(await s.tokens.revoke(stored.id)).toBe(true);
        expect(await s.tokens.check(token)).toEqual({ ok: false, reason: 'revoked' });
        expect(await s.tokens.revoke('nope')).toBe(false);
      });

      it('lists tokens oldest first, and lets two replicas consume a one-use token only once between them', async () => {
        const first = await s.tokens.create({ labels: {}, maxUses: 1, expiresInSeconds: 60 });
        tick(1_000);
        const second = await s.tokens.create({ labels: {}, maxUses: 1, expiresInSeconds: 60 });
        expect((await s.tokens.list()).map((t) => t.id)).toEqual([first.stored.id, second.stored.id]);
        const other = await open({ now, cipher });
        const uses = await Promise.all([s.tokens.consume(first.stored.id), other.tokens.consume(first.stored.id)]);
        expect(uses.filter(Boolean)).toHaveLength(1);
        expect((await other.tokens.get(first.stored.id))?.uses).toBe(1);
      });
    });

    describe('remote-access audit', () => {
      it('records sessions opened and ended once, refusals and failures, lists newest first by device and time, and closes orphans', async () => {
        const opened = await s.audit.opened(START);
        tick(1_000);
        await s.audit.ended(opened, { outcome: 'closed', bytesUp: 5_000_000_000, bytesDown: 20, exitCode: 0 });
        await s.audit.ended(opened, { outcome: 'failed', bytesUp: 1, bytesDown: 1, reason: 'late' });
        const denied = await s.audit.denied({ ...START, device: 'dev-2' }, 'no exec on this device');
        const failed = await s.audit.failed(START, 'device offline');
        const orphan = await s.audit.opened({ ...START, kind: 'shell', what: 'shell' });
        expect([denied, failed, orphan].every((id) => id > opened)).toBe(true);
        tick(1_000);
        expect(await s.audit.closeOrphans('hub restarted')).toBe(1);
        const all = await s.audit.list({ limit: 10 });
        expect(all.map((r) => [r.id, r.outcome])).toEqual([
          [orphan, 'hub_lost'],
          [failed, 'failed'],
          [denied, 'denied'],
          [opened, 'closed'],
        ]);
        expect(all[3]).toEqual({
          id: opened,
          actor: 'ops',
          device: 'dev-1',
          kind: 'exec',
          what: 'sh -c uptime',
          outcome: 'closed',
          startedAt: '2026-03-01T00:00:00.000Z',
          endedAt: '2026-03-01T00:00:01.000Z',
          bytesUp: 5_000_000_000,
          bytesDown: 20,
          exitCode: 0,
        });
        expect(all[0]).toMatchObject({ reason: 'hub restarted', endedAt: '2026-03-01T00:00:02.000Z' });
        expect((await s.audit.list({ device: 'dev-2', limit: 10 })).map((r) => r.id)).toEqual([denied]);
        expect((await s.audit.list({ sinceMs: Date.parse('2026-03-01T00:00:01.000Z'), limit: 10 })).map((r) => r.id)).toEqual([
          orphan,
          failed,
          denied,
        ]);
        expect((await s.audit.list({ limit: 2 })).map((r) => r.id)).toEqual([orphan, failed]);
      });

      it('keeps only the newest records once past its bound', async () => {
        const bounded = await open({ now, cipher, auditMaxRecords: 5 });
        let last = 0;
        for (let i = 0; i < 100; i++) last = await bounded.audit.denied(START, `try ${i}`);
        const kept = await bounded.audit.list({ limit: 1_000 });
        expect(kept.map((r) => r.id)).toEqual([last, last - 1, last - 2, last - 3, last - 4]);
        expect(kept[0]?.reason).toBe('try 99');
      });
    });
  });
}
