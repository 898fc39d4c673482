/**
 * The hub killed with SIGKILL in the middle of a rollout, while a simulated
 * fleet (the real agent code over in-memory runtimes) keeps logging: after
 * the restart on the same data dir nothing of the desired state is lost (the
 * app's revision, the rollout), every device converges on the new revision,
 * every log line written while the hub was gone is stored exactly once, and
 * every event of every device (before, during and after) once, none missing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceView, List, RolloutStatus } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { type HubProcess, removeDir, startHubProcess } from '../support/processes.js';
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { duplicates, storedEventSeqs, storedLogLines } from '../support/stored-telemetry.js';
import { waitFor } from '../support/wait.js';

const COUNT = 6;
const LINES = 40;

const webApp = (version: string) => ({
  name: 'web',
  scheduling: { selectors: { zone: 'a' } },
  spec: {
    containers: [{ name: 'server', image: `registry.local/sim-web:${version}` }],
    update: { minReadySeconds: 1, healthTimeout: '20s' },
    rollout: { batchSize: 1 },
  },
});

describe('hub killed mid-rollout', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('keeps its desired state, converges the fleet, and stores what was logged meanwhile exactly once', { timeout: 120_000 }, async () => {
    const hub: HubProcess = await startHubProcess();
    cleanup.add('hub data', () => removeDir(hub.dataDir));
    cleanup.add('hub', () => hub.proc.stop());
    const fleet: Fleet = await startFleet({
      hubUrl: hub.mqttUrl,
      count: COUNT,
      idPrefix: 'kill',
      labels: () => ({ zone: 'a' }),
      // Slow enough that one device at a time makes a rollout of several seconds.
      pullDelayMs: 1_000,
      resyncIntervalMs: 500,
      agent: { stateIntervalMs: 100 },
    });
    cleanup.add('fleet', () => fleet.close());
    const api = (method: string, path: string, body?: unknown) => http(hub.url, method, path, body);
    const devices = async () => (await api('GET', '/api/v1/devices')).body as List<DeviceView>;
    const onRevision = async (revision: number) =>
      (await devices()).items.filter((d) => d.apps.some((a) => a.name === 'web' && a.revision === revision && a.phase === 'running'))
        .length;

    expect((await api('POST', '/api/v1/apps', webApp('1.0'))).status).toBe(200);
    await waitFor('revision 1 running everywhere', async () => (await onRevision(1)) === COUNT, { timeoutMs: 30_000 });
    expect((await api('POST', '/api/v1/apps', webApp('2.0'))).body).toMatchObject({ revision: 2 });
    await waitFor('the rollout under way', async () => (await onRevision(2)) >= 1, { timeoutMs: 30_000 });

    await hub.proc.stop(true);
    const before = (await onRevisionOffline(fleet, '2.0')) as number;
    expect(before).toBeLessThan(COUNT);
    // While the hub is gone every device logs, from whichever container it runs.
    for (const device of fleet.devices) {
      const running = device.runtime.containers().find((c) => c.state === 'running');
      expect(running, device.id).toBeDefined();
      for (let n = 1; n <= LINES; n++) device.runtime.writeLog(running!.id, 'stdout', `${device.id} offline line ${n}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await hub.restart();

    const app = await api('GET', '/api/v1/apps/web');
    expect(app.body).toMatchObject({ revision: 2 });
    await waitFor('revision 2 running everywhere', async () => (await onRevision(2)) === COUNT, { timeoutMs: 60_000 });
    await waitFor(
      'the rollout complete',
      async () => ((await api('GET', '/api/v1/apps/web/rollout')).body as RolloutStatus).phase === 'complete',
      {
        timeoutMs: 20_000,
      },
    );

    for (const device of fleet.devices) {
      const expected = Array.from({ length: LINES }, (_, i) => `${device.id} offline line ${i + 1}`);
      await waitFor(`${device.id}'s offline lines stored`, async () => {
        const stored = new Set(await storedLogLines(hub.url, device.id));
        return expected.every((line) => stored.has(line));
      });
      const lines = (await storedLogLines(hub.url, device.id)).filter((l) => l.includes('offline line'));
      expect(duplicates(lines), device.id).toEqual([]);
      expect(lines).toHaveLength(LINES);
      // Event seqs count from 1 on each device: a gap would be a lost event.
      const seqs = await storedEventSeqs(hub.url, device.id);
      expect(duplicates(seqs), device.id).toEqual([]);
      expect(
        [...seqs].sort((a, b) => a - b),
        device.id,
      ).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    }
  });
});

/** How many simulated devices run `version` now, asked of their runtimes (the hub is down). */
async function onRevisionOffline(fleet: Fleet, version: string): Promise<number> {
  return fleet.devices.filter((d) => d.runtime.containers().some((c) => c.state === 'running' && c.image.endsWith(version))).length;
}
