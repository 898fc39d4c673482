/**
 * An app's view (`apps.get`, `apps.list`) reads the fleet's plain columns and never opens a
 * desired document: each one is sealed (a decryption per device), and a dashboard or a script
 * polling an app during a fan-out to 10,000 devices made the hub open all of them at every poll.
 * Real stores (SQLite in memory, the real cipher).
 */
import { describe, expect, it, vi } from 'vitest';
import { appMethods } from '../../broker/dispatcher/app-methods.js';
import { Rollouts } from '../../broker/dispatcher/rollouts.js';
import { SecretCipher } from '../../broker/store/secret-cipher.js';
import { SqliteAppStore } from '../../broker/store/sqlite/apps.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteDeviceStore } from '../../broker/store/sqlite/devices.js';
import { SqliteRolloutStore } from '../../broker/store/sqlite/rollouts.js';
import { SqliteSecretStore } from '../../broker/store/sqlite/secrets.js';
import { appSpec, deviceState } from '../support/fixtures.js';
import { LogCapture } from '../support/logs.js';

describe('an app’s view', () => {
  it('lists the devices its scheduling selects, with their phases, without opening a desired document', async () => {
    const db = openDatabase(':memory:');
    const now = () => new Date('2026-01-01T00:00:00Z');
    const cipher = new SecretCipher(Buffer.alloc(32, 3));
    const apps = new SqliteAppStore(db, now);
    const devices = new SqliteDeviceStore(db, cipher, now);
    const rollouts = new Rollouts({ apps, devices, rollouts: new SqliteRolloutStore(db), logger: new LogCapture().logger, now });
    const methods = appMethods({
      apps,
      devices,
      secrets: new SqliteSecretStore(db, cipher, now),
      rollouts,
      desiredMayHaveChanged: () => {},
    });
    await methods['apps.apply']({ spec: appSpec('web', { site: 'roof' }) });
    const running = { name: 'web', revision: 1, phase: 'running' as const, containers: [] };
    await devices.recordStateReport(deviceState('dev-1', { labels: { site: 'roof' }, apps: [running] }));
    await devices.recordStateReport(deviceState('dev-2', { labels: { site: 'attic' } }));
    await devices.recordStateReport(deviceState('dev-3', { labels: { site: 'attic' } }));
    // The operator's label wins over the device's own.
    await devices.setOperatorLabels('dev-3', { site: 'roof' });
    for (const id of ['dev-1', 'dev-2', 'dev-3']) {
      await devices.recordDesired({ deviceId: id, revision: 1, issuedAt: now().toISOString(), apps: [] }, 'h');
    }
    await devices.recordOnline('dev-3', false);

    const opened = vi.spyOn(cipher, 'openText');
    const detail = await methods['apps.get']({ name: 'web' });
    const list = await methods['apps.list']({});
    expect(opened).not.toHaveBeenCalled();
    expect(detail.devices).toEqual([
      { id: 'dev-1', online: true, phase: 'running', revision: 1 },
      { id: 'dev-3', online: false, phase: null, revision: null },
    ]);
    expect(list.items.map((app) => app.name)).toEqual(['web']);
    expect(list.items[0]).toMatchObject({ name: 'web', revision: 1 });
  });
});
