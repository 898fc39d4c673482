/**
 * What a planning pass tells the dispatcher each device's document must name (broker/jobs/jobs.ts
 * planningPass), over a real (in-memory) SQLite job store: a fleet-wide pass, which reads each open
 * job's executions once, names exactly what the store's per-device read does, for devices with
 * admitted, waiting, final, cancel-requested and complete jobs alike.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Jobs, type JobsChange } from '../../broker/jobs/jobs.js';
import { SECRETS_KEY_BYTES, SecretCipher } from '../../broker/store/secret-cipher.js';
import { type Db, openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteDeviceStore } from '../../broker/store/sqlite/devices.js';
import { SqliteJobStore } from '../../broker/store/sqlite/jobs.js';
import { SqliteSecretStore } from '../../broker/store/sqlite/secrets.js';
import { deviceState } from '../support/fixtures.js';
import { LogCapture } from '../support/logs.js';

const opened: Db[] = [];
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
});

const DEVICES = Array.from({ length: 40 }, (_, i) => `gw-${String(i).padStart(2, '0')}`);

async function fleet() {
  const db = openDatabase(':memory:');
  opened.push(db);
  const cipher = new SecretCipher(randomBytes(SECRETS_KEY_BYTES));
  const devices = new SqliteDeviceStore(db, cipher);
  for (const id of DEVICES) await devices.recordStateReport(deviceState(id, { labels: { site: 'lab' } }));
  await devices.recordOnline('gw-00', true);
  await devices.recordOnline('gw-01', true);
  const store = new SqliteJobStore(db);
  const changes: JobsChange[] = [];
  const jobs = new Jobs({
    store,
    devices,
    secrets: new SqliteSecretStore(db, cipher),
    event: () => undefined,
    changed: (change) => changes.push(change),
    logger: new LogCapture().logger,
  });
  return { store, jobs, changes };
}

const spec = (name: string, rollout?: Record<string, number>) => ({
  name,
  scheduling: { selectors: { site: 'lab' } },
  spec: { containers: [{ name: 'task', image: 'busybox:1.36' }], ...(rollout ? { rollout } : {}) },
});

describe('planningPass', () => {
  it('names for a whole fleet what the store names device by device', async () => {
    const { store, jobs } = await fleet();
    // Admitted everywhere; one device finished it, another runs it.
    await jobs.create(spec('everywhere'));
    await jobs.admit(['everywhere']);
    const everywhere = (await store.get('everywhere'))!.uid;
    await jobs.recordReports('gw-03', [{ name: 'everywhere', execution: everywhere, state: 'succeeded', attempt: 1 }]);
    await jobs.recordReports('gw-04', [{ name: 'everywhere', execution: everywhere, state: 'running', attempt: 1 }]);
    // Two slots, on the two devices online; the rest wait outside any document.
    await jobs.create(spec('limited', { maxConcurrent: 2 }));
    expect((await jobs.admit(['limited'])).sort()).toEqual(['gw-00', 'gw-01']);
    // Canceled while one device runs it: that one is told to cancel, the others were dropped.
    await jobs.create(spec('stopped', { maxConcurrent: 1 }));
    await jobs.admit(['stopped']);
    const stopped = (await store.get('stopped'))!.uid;
    await jobs.recordReports('gw-00', [{ name: 'stopped', execution: stopped, state: 'running', attempt: 1 }]);
    await jobs.cancel('stopped', 'alice');

    const pass = await jobs.planningPass();
    const whole = await pass.desiredFor(DEVICES);
    const names = (device: string) =>
      (whole.get(device) ?? []).map((e) => `${e.job.name}${e.execution.cancelRequested ? ' (cancel)' : ''}`).sort();
    expect(names('gw-00')).toEqual(['everywhere', 'limited', 'stopped (cancel)']);
    expect(names('gw-01')).toEqual(['everywhere', 'limited']);
    expect(names('gw-03')).toEqual([]);
    expect(names('gw-04')).toEqual(['everywhere']);
    expect(pass.specs.map((s) => s.name).sort()).toEqual(['everywhere', 'limited', 'stopped']);

    for (const device of DEVICES) {
      const alone = await pass.desiredFor([device]);
      const byStore = await store.desiredFor(device);
      const key = (entries: readonly { job: { name: string }; execution: { device: string; state: string; cancelRequested: boolean } }[]) =>
        entries.map((e) => [e.job.name, e.execution.device, e.execution.state, e.execution.cancelRequested]).sort();
      expect(key(whole.get(device) ?? []), device).toEqual(key(byStore));
      expect(key(alone.get(device) ?? []), device).toEqual(key(byStore));
    }
  });

  it('names nothing once the jobs are gone', async () => {
    const { jobs } = await fleet();
    await jobs.create(spec('done'));
    await jobs.delete('done', 'alice');
    const pass = await jobs.planningPass();
    expect(pass.specs).toEqual([]);
    expect((await pass.desiredFor(DEVICES)).size).toBe(0);
  });
});
