/**
 * The hub's SQLite store on a real file: revisions survive a reopen, the file
 * is in WAL mode at the current schema version, and a file written by a newer
 * Flotilla is refused rather than misread.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretCipher } from '../../broker/store/secret-cipher.js';
import { SqliteAppStore } from '../../broker/store/sqlite/apps.js';
import { type Db, openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteDeviceStore } from '../../broker/store/sqlite/devices.js';
import { MIGRATIONS } from '../../broker/store/sqlite/migrations.js';
import { SqliteSecretStore } from '../../broker/store/sqlite/secrets.js';
import { type AppSpec, validateAppSpec } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec, deviceState } from '../support/fixtures.js';
import { scratchDir } from '../support/scratch.js';

function spec(name: string, image = 'registry.local/thermo:1.0'): AppSpec {
  const result = validateAppSpec(appSpec(name, { site: 'roof' }, image));
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.value;
}

/** The same spec with every object's keys in reverse order, as another writer might produce it. */
function reversedKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reversedKeys) as T;
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reversedKeys(v)]),
  ) as T;
}

describe('SQLite store on a real file', () => {
  const cleanup = new Cleanup();
  let dir: string;
  let file: string;

  /** Opens through Flotilla's openDatabase, closed after the test if still open. */
  const open = (): Db => {
    const db = openDatabase(file);
    cleanup.add('db', () => db.open && db.close());
    return db;
  };

  beforeEach(() => {
    dir = scratchDir('flotilla-it-store-');
    // A directory that does not exist yet: openDatabase creates it.
    file = join(dir, 'nested', 'hub.db');
  });

  afterEach(() => cleanup.run());

  it('numbers app revisions by content and keeps them across a reopen', async () => {
    let db = open();
    const apps = new SqliteAppStore(db, () => new Date('2026-01-01T00:00:00Z'));
    expect(await apps.apply(spec('thermo'))).toEqual({ revision: 1, changed: true });
    expect(await apps.apply(spec('thermo'))).toEqual({ revision: 1, changed: false });
    expect(await apps.apply(reversedKeys(spec('thermo')))).toEqual({ revision: 1, changed: false });
    expect(await apps.apply(spec('other'))).toEqual({ revision: 1, changed: true });
    db.close();

    db = open();
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const reopened = new SqliteAppStore(db, () => new Date('2026-01-02T00:00:00Z'));
    expect((await reopened.list()).map((a) => [a.name, a.revision])).toEqual([
      ['other', 1],
      ['thermo', 1],
    ]);
    expect(await reopened.apply(spec('thermo'))).toEqual({ revision: 1, changed: false });
    expect(await reopened.apply(spec('thermo', 'registry.local/thermo:2.0'))).toEqual({ revision: 2, changed: true });
    expect(await reopened.get('thermo')).toEqual({
      name: 'thermo',
      revision: 2,
      forced: false,
      spec: spec('thermo', 'registry.local/thermo:2.0'),
      createdAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-02T00:00:00.000Z',
      scope: null,
    });
    // Going back to an older spec is a new revision, never a rewind.
    expect(await reopened.apply(spec('thermo'))).toEqual({ revision: 3, changed: true });
    db.close();

    // Read the file with a plain SQLite connection: every revision is kept, immutable.
    const raw = new Database(file, { readonly: true });
    cleanup.add('raw db', () => raw.open && raw.close());
    const rows = raw.prepare('SELECT revision, spec FROM app_revisions WHERE app = ? ORDER BY revision').all('thermo') as {
      revision: number;
      spec: string;
    }[];
    expect(rows.map((r) => [r.revision, (JSON.parse(r.spec) as AppSpec).spec.containers[0]!.image])).toEqual([
      [1, 'registry.local/thermo:1.0'],
      [2, 'registry.local/thermo:2.0'],
      [3, 'registry.local/thermo:1.0'],
    ]);
    expect(raw.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
  });

  it('keeps devices, their desired documents and secrets across a reopen, and deleting an app drops its revisions', async () => {
    let db = open();
    const cipher = new SecretCipher(randomBytes(32));
    const devices = new SqliteDeviceStore(db, cipher);
    const apps = new SqliteAppStore(db);
    expect(await devices.ensure('dev-1')).toBe(true);
    expect(await devices.ensure('dev-1')).toBe(false);
    await devices.recordState(deviceState('dev-1', { observedRevision: 4, labels: { site: 'roof' } }));
    await devices.setOperatorLabels('dev-1', { site: 'attic', tier: 'edge' });
    const desired = { deviceId: 'dev-1', revision: 5, issuedAt: '2026-01-01T00:00:00.000Z', apps: [] };
    await devices.recordDesired(desired, 'cafe');
    await devices.recordOnline('dev-1', false);
    await new SqliteSecretStore(db, cipher).set('gw-token', Buffer.from('s3cr3t'));
    await apps.apply(spec('thermo'));
    await apps.apply(spec('thermo', 'registry.local/thermo:2.0'));
    db.close();

    db = open();
    const device = await new SqliteDeviceStore(db, cipher).get('dev-1');
    expect(device).toMatchObject({
      id: 'dev-1',
      online: false,
      reportedLabels: { site: 'roof' },
      operatorLabels: { site: 'attic', tier: 'edge' },
      labels: { site: 'attic', tier: 'edge' },
      observedRevision: 4,
      desiredRevision: 5,
      desiredHash: 'cafe',
      desired,
    });
    expect(device?.state?.labels).toEqual({ site: 'roof' });
    expect((await new SqliteSecretStore(db, cipher).get('gw-token'))?.toString()).toBe('s3cr3t');

    const reopened = new SqliteAppStore(db);
    expect(await reopened.delete('thermo')).toBe(true);
    expect(await reopened.delete('thermo')).toBe(false);
    expect(db.prepare('SELECT COUNT(*) AS n FROM app_revisions').get()).toEqual({ n: 0 });
    // A re-created app starts its history again at revision 1.
    expect(await reopened.apply(spec('thermo'))).toEqual({ revision: 1, changed: true });
  });

  it('refuses a database written by a newer schema, with a message that says so, and leaves its data alone', () => {
    open().close(); // create the file at the current version
    const newer = MIGRATIONS.length + 1;
    const raw = new Database(file);
    raw.exec("CREATE TABLE from_the_future (x TEXT); INSERT INTO from_the_future VALUES ('keep me')");
    raw.pragma(`user_version = ${newer}`);
    raw.close();

    expect(() => open()).toThrow(`database schema version ${newer} is newer than this hub (${MIGRATIONS.length}); upgrade Flotilla`);

    const check = new Database(file, { readonly: true });
    cleanup.add('check db', () => check.open && check.close());
    expect(check.pragma('user_version', { simple: true })).toBe(newer);
    expect(check.prepare('SELECT x FROM from_the_future').all()).toEqual([{ x: 'keep me' }]);
  });

  it('upgrades a file from an older schema version in one go', () => {
    // Version 0: an existing but empty file, as a first start on a provisioned volume finds it.
    file = join(dir, 'empty.db');
    new Database(file).close();
    const db = open();
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
      (t) => t.name,
    );
    expect(tables).toEqual(expect.arrayContaining(['app_revisions', 'apps', 'devices', 'secrets']));
    // Opening a current file again runs nothing and changes nothing.
    db.close();
    expect(open().pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
  });
});
