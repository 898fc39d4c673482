/** DeviceStore's cheap reads for Prometheus scrapes, on a real SQLite file. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceStore } from '../../broker/store/devices.js';
import { SecretCipher } from '../../broker/store/secret-cipher.js';
import { type Db, openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteDeviceStore } from '../../broker/store/sqlite/devices.js';
import type { AppState } from '../../shared/index.js';
import { deviceState } from '../support/fixtures.js';
import { scratchDir } from '../support/scratch.js';

describe('DeviceStore presence and app phases', () => {
  let db: Db;
  let store: DeviceStore;

  beforeEach(() => {
    db = openDatabase(join(scratchDir('flotilla-it-store-'), 'hub.db'));
    store = new SqliteDeviceStore(db, new SecretCipher(randomBytes(32)));
  });
  afterEach(() => {
    db.close();
  });

  const app = (name: string, phase: AppState['phase']): AppState => ({ name, revision: 1, phase, containers: [] });

  async function report(id: string, apps: AppState[], online = true) {
    await store.ensure(id);
    await store.recordState(deviceState(id, { apps }));
    if (!online) await store.recordOnline(id, false);
  }

  it('lists every device with its online flag and when it was last heard from', async () => {
    await report('dev-b', []);
    await report('dev-a', [], false);
    await store.ensure('dev-c'); // known, never reported
    const lastSeen = Object.fromEntries((await store.list()).map((d) => [d.id, d.lastSeen]));
    expect(lastSeen['dev-a']).toEqual(expect.any(String));
    expect(await store.presence()).toEqual([
      { id: 'dev-a', online: false, lastSeen: lastSeen['dev-a'] },
      { id: 'dev-b', online: true, lastSeen: lastSeen['dev-b'] },
      { id: 'dev-c', online: false, lastSeen: null },
    ]);
  });

  it('counts devices per app and reported phase, an offline device under offline', async () => {
    await report('dev-1', [app('thermo', 'running'), app('cam', 'failed')]);
    await report('dev-2', [app('thermo', 'running'), app('cam', 'rolled-back')]);
    await report('dev-3', [app('thermo', 'pulling')]);
    await report('dev-4', [app('thermo', 'running'), app('cam', 'running')], false);
    await report('dev-5', []);
    await store.ensure('dev-6');
    expect(await store.appPhases()).toEqual([
      { app: 'cam', phase: 'failed', devices: 1 },
      { app: 'cam', phase: 'offline', devices: 1 },
      { app: 'cam', phase: 'rolled-back', devices: 1 },
      { app: 'thermo', phase: 'offline', devices: 1 },
      { app: 'thermo', phase: 'pulling', devices: 1 },
      { app: 'thermo', phase: 'running', devices: 2 },
    ]);
  });

  it('follows a device coming back online', async () => {
    await report('dev-1', [app('thermo', 'running')], false);
    expect(await store.appPhases()).toEqual([{ app: 'thermo', phase: 'offline', devices: 1 }]);
    await store.recordOnline('dev-1', true);
    expect(await store.appPhases()).toEqual([{ app: 'thermo', phase: 'running', devices: 1 }]);
  });
});
