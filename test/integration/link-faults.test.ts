/**
 * A real agent (link, outbox, reconciler, log collector over an in-memory
 * runtime) behind a fault-injecting TCP proxy to a real hub. For each fault,
 * log lines and events are counted as sent and as stored: none lost, none
 * twice; the device converges on what was deployed during the fault; and
 * what the agent holds stays bounded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_IN_FLIGHT } from '../../agent/link.js';
import type { DeviceView } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { duplicates, storedEventSeqs, storedLogLines } from '../support/stored-telemetry.js';
import { waitFor } from '../support/wait.js';

const webApp = (version: string) => ({
  name: 'web',
  scheduling: { selectors: { zone: 'a' } },
  spec: { containers: [{ name: 'server', image: `registry.local/web:${version}` }], update: { minReadySeconds: 1, healthTimeout: '30s' } },
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('agent link under faults', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  interface Rig {
    hub: TestHub;
    proxy: FaultProxy;
    fleet: Fleet;
    id: string;
    /** Writes `count` numbered lines into whatever container the device runs now; returns how many were written. */
    log(count: number): number;
    sent: string[];
  }

  async function rig(): Promise<Rig> {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const proxy = await startFaultProxy({ targetPort: Number(new URL(hub.mqttUrl).port) });
    cleanup.add('proxy', () => proxy.close());
    const fleet = await startFleet({
      hubUrl: proxy.url,
      count: 1,
      idPrefix: 'faulty',
      labels: () => ({ zone: 'a' }),
      resyncIntervalMs: 500,
      // A 2 s keepalive finds a dead link in 3 s; the backoff window starts at 1 s.
      agent: { stateIntervalMs: 100, keepaliveSeconds: 2, logBatchMs: 100 },
    });
    cleanup.add('fleet', () => fleet.close());
    const device = fleet.devices[0]!;
    const sent: string[] = [];
    const log = (count: number) => {
      const running = device.runtime.containers().find((c) => c.state === 'running');
      if (!running) return 0;
      for (let i = 0; i < count; i++) {
        const line = `line ${sent.length + 1}`;
        device.runtime.writeLog(running.id, 'stdout', line);
        sent.push(line);
      }
      return count;
    };
    return { hub, proxy, fleet, id: device.id, log, sent };
  }

  async function deviceView(r: Rig): Promise<DeviceView> {
    return (await http<DeviceView>(r.hub.httpUrl, 'GET', `/api/v1/devices/${r.id}`)).body;
  }

  async function runningRevision(r: Rig, revision: number): Promise<boolean> {
    return (await deviceView(r)).apps.some((a) => a.name === 'web' && a.revision === revision && a.phase === 'running');
  }

  /** Everything logged arrived once; every event seq from 1 to the newest arrived once. */
  async function expectExactlyOnce(r: Rig): Promise<void> {
    const agent = r.fleet.devices[0]!.agent;
    await waitFor('the outbox to empty', () => outboxEmpty(r), { timeoutMs: 30_000 });
    await waitFor(
      `all ${r.sent.length} lines stored`,
      async () => {
        const stored = await storedLogLines(r.hub.httpUrl, r.id);
        return stored.filter((l) => l.startsWith('line ')).length >= r.sent.length;
      },
      { timeoutMs: 20_000 },
    );
    const lines = (await storedLogLines(r.hub.httpUrl, r.id)).filter((l) => l.startsWith('line '));
    expect(duplicates(lines)).toEqual([]);
    expect(new Set(lines)).toEqual(new Set(r.sent));
    expect(agent.logs.droppedLines).toBe(0);
    const seqs = await storedEventSeqs(r.hub.httpUrl, r.id);
    expect(seqs.length).toBeGreaterThan(0);
    expect(duplicates(seqs)).toEqual([]);
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  }

  function outboxEmpty(r: Rig): boolean {
    return r.fleet.devices[0]!.agent.link.outboxStats.messages === 0;
  }

  it('loses and repeats nothing while the link flaps every 1–5 s for a minute, and converges on an update made meanwhile', {
    timeout: 150_000,
  }, async () => {
    const r = await rig();
    expect((await http(r.hub.httpUrl, 'POST', '/api/v1/apps', webApp('1.0'))).status).toBe(200);
    await waitFor('revision 1 running', () => runningRevision(r, 1), { timeoutMs: 20_000 });

    const stopFlapping = r.proxy.flap({ minMs: 1_000, maxMs: 5_000, downMs: 300 });
    let maxHeld = 0;
    const started = Date.now();
    let updated = false;
    let crashed = false;
    while (Date.now() - started < 60_000) {
      r.log(10);
      const held = r.fleet.devices[0]!.agent.link.outboxStats.messages;
      maxHeld = Math.max(maxHeld, held);
      if (!updated && Date.now() - started > 20_000) {
        // The operator deploys while the link is at its worst.
        updated = (await http(r.hub.httpUrl, 'POST', '/api/v1/apps', webApp('2.0')).catch(() => ({ status: 0 }))).status === 200;
      }
      // A crash before the update (one during it would rightly roll it back): the agent restarts it and says so in events.
      if (!crashed && Date.now() - started > 10_000) {
        crashed = true;
        const device = r.fleet.devices[0]!;
        const running = device.runtime.containers().find((c) => c.state === 'running');
        if (running) device.runtime.kill(running.id, 1);
      }
      await sleep(100);
    }
    stopFlapping();
    expect(r.proxy.stats.cuts).toBeGreaterThanOrEqual(10);
    expect(updated).toBe(true);

    await waitFor('revision 2 running', () => runningRevision(r, 2), { timeoutMs: 30_000 });
    await expectExactlyOnce(r);
    // Bounded: a minute of 100 lines/s with outages never piled up beyond a few seconds' worth.
    expect(maxHeld).toBeLessThan(200);
    expect(r.fleet.devices[0]!.agent.link.unacknowledged).toBeLessThanOrEqual(MAX_IN_FLIGHT);
  });

  it('finds a half-open link by its keepalive, and a 30 s stall during a deployment loses nothing', { timeout: 120_000 }, async () => {
    const r = await rig();
    expect((await http(r.hub.httpUrl, 'POST', '/api/v1/apps', webApp('1.0'))).status).toBe(200);
    await waitFor('revision 1 running', () => runningRevision(r, 1), { timeoutMs: 20_000 });
    r.log(50);

    r.proxy.stall();
    const stalledAt = Date.now();
    expect((await http(r.hub.httpUrl, 'POST', '/api/v1/apps', webApp('2.0'))).status).toBe(200);
    // Both ends notice: the agent's link closes, and the hub marks the device offline (its will).
    await waitFor('the hub to mark the device offline', async () => !(await deviceView(r)).online, { timeoutMs: 10_000 });
    await waitFor('the agent to notice', () => !r.fleet.devices[0]!.agent.link.connected, { timeoutMs: 10_000 });
    while (Date.now() - stalledAt < 30_000) {
      r.log(10);
      await sleep(200);
    }
    r.proxy.resume();
    // The stalled connections are gone for good; a fresh one must be made.
    r.proxy.cut();

    await waitFor('revision 2 running', () => runningRevision(r, 2), { timeoutMs: 40_000 });
    expect((await deviceView(r)).online).toBe(true);
    await expectExactlyOnce(r);
  });
});
