/**
 * A reconnect storm with the real agent code: 2,000 simulated devices (the
 * real link, outbox, reconciler and planner over in-memory runtimes) run an
 * app; the hub is killed with SIGKILL and started again; every device comes
 * back (paced by the hub's connection admission, each retrying with its own
 * jittered backoff) and converges on an update applied right after the restart.
 * The time each phase took is printed, for BENCHMARKS.md's context.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceView, List } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { type HubProcess, removeDir, startHubProcess } from '../support/processes.js';
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { waitFor } from '../support/wait.js';

const COUNT = 2_000;

const webApp = (version: string) => ({
  name: 'web',
  scheduling: { selectors: { zone: 'a' } },
  spec: { containers: [{ name: 'server', image: `registry.local/web:${version}` }] },
});

describe('reconnect storm', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run(), 120_000);

  it(`brings ${COUNT} real agents back after a hub kill -9, and converges them on an update`, { timeout: 600_000 }, async () => {
    // All 2,000 agents share 127.0.0.1: the per-address limit (sized for one carrier NAT) is not what this measures.
    const hub: HubProcess = await startHubProcess(undefined, ['--max-connect-rate-per-address', '0']);
    cleanup.add('hub data', () => removeDir(hub.dataDir));
    cleanup.add('hub', () => hub.proc.stop());
    const api = (method: string, path: string, body?: unknown) => http(hub.url, method, path, body);
    const fleetState = async () => {
      const devices = ((await api('GET', '/api/v1/devices')).body as List<DeviceView>).items;
      return {
        online: devices.filter((d) => d.online).length,
        running: (version: number) =>
          devices.filter((d) => d.apps.some((a) => a.name === 'web' && a.revision === version && a.phase === 'running')).length,
      };
    };

    let started = Date.now();
    const fleet: Fleet = await startFleet({
      hubUrl: hub.mqttUrl,
      count: COUNT,
      idPrefix: 'storm',
      labels: () => ({ zone: 'a' }),
      startConcurrency: 100,
      // Quiet agents: this is about connections and desired state, not telemetry.
      resyncIntervalMs: 30_000,
      agent: { metricsIntervalMs: 300_000, outboxPath: 'memory', stateIntervalMs: 1_000 },
    });
    cleanup.add('fleet', () => fleet.close());
    expect((await api('POST', '/api/v1/apps', webApp('1.0'))).status).toBe(200);
    await waitFor(`${COUNT} devices running revision 1`, async () => (await fleetState()).running(1) === COUNT, {
      timeoutMs: 240_000,
      intervalMs: 1_000,
    });
    const firstRollout = Date.now() - started;

    await hub.restart({ hard: true });
    started = Date.now();
    expect((await api('POST', '/api/v1/apps', webApp('2.0'))).status).toBe(200);
    let allOnline = 0;
    await waitFor(
      `${COUNT} devices back and running revision 2`,
      async () => {
        const state = await fleetState();
        if (!allOnline && state.online === COUNT) allOnline = Date.now() - started;
        return state.online === COUNT && state.running(2) === COUNT;
      },
      { timeoutMs: 300_000, intervalMs: 1_000 },
    );
    const converged = Date.now() - started;
    console.log(
      `reconnect storm, ${COUNT} agents: first start to all running ${(firstRollout / 1000).toFixed(1)} s; ` +
        `after kill -9 and restart: all online ${(allOnline / 1000).toFixed(1)} s, all on the update ${(converged / 1000).toFixed(1)} s`,
    );
  });
});
