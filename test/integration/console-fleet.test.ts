/**
 * The fleet stream the web console's fleet page follows
 * (`GET /api/v1/devices?follow=true`): every device first, then what changes,
 * at most once a second, from real agents on a real hub: their apps coming
 * up, their metrics filling the sparklines, an operator's labels, a device
 * going offline; the sparklines of a restarted hub seeded from the stored
 * samples; the same role as `devices.list`.
 */
import { get, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { FLEET_EVENT, type FleetChanges, type FleetRow, type FleetSnapshot, Topics } from '../../shared/index.js';
import { readSse } from '../../shared/sse.js';
import { bearer, createAccount, registerDevice } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec, deviceState, metricsSample } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { startFleet } from '../support/sim/fleet.js';
import { waitFor } from '../support/wait.js';

interface Received {
  event: string;
  at: number;
  data: FleetSnapshot | FleetChanges;
}

/** Follows the stream, keeping every event and the fleet as a follower would hold it. */
async function followFleet(hub: TestHub, cleanup: Cleanup, headers: Record<string, string> = {}) {
  // node:http: its response is a stream of Buffers whatever DOM types the program also loads.
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = get(`${hub.httpUrl}/api/v1/devices?follow=true`, { headers }, resolve);
    req.on('error', reject);
    cleanup.add('fleet follower', () => void req.destroy());
  });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toBe('text/event-stream');
  expect(res.headers['x-accel-buffering']).toBe('no');
  const events: Received[] = [];
  const fleet = new Map<string, FleetRow>();
  const reading = (async () => {
    for await (const { event, data } of readSse(res)) {
      const parsed = JSON.parse(data) as FleetSnapshot | FleetChanges;
      events.push({ event, at: Date.now(), data: parsed });
      if (event === FLEET_EVENT.all) fleet.clear();
      for (const row of parsed.items) fleet.set(row.id, row);
      if ('removed' in parsed) for (const id of parsed.removed) fleet.delete(id);
    }
  })().catch(() => {
    // The follower is destroyed at cleanup: the read ends there.
  });
  const row = (id: string) => fleet.get(id);
  return { events, fleet, row, reading };
}

describe('the fleet stream', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('sends every device, then only what changed, at most once a second, as agents report, metrics arrive and a device drops', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const sim = await startFleet({
      hubUrl: hub.mqttUrl,
      count: 3,
      idPrefix: 'edge',
      labels: (i) => ({ site: i === 0 ? 'roof' : 'yard' }),
      agent: { metricsIntervalMs: 1000 },
    });
    cleanup.add('fleet', () => sim.close());
    await waitFor('the devices online', async () => {
      const list = await http<{ items: { online: boolean }[] }>(hub.httpUrl, 'GET', '/api/v1/devices');
      return list.body.items.length === 3 && list.body.items.every((d) => d.online);
    });

    const follower = await followFleet(hub, cleanup);
    await waitFor('the whole fleet', () => follower.events.length > 0);
    const first = follower.events[0]!;
    expect(first.event).toBe(FLEET_EVENT.all);
    expect(first.data.items.map((row) => row.id)).toEqual(['edge-0', 'edge-1', 'edge-2']);
    expect(follower.row('edge-0')).toMatchObject({
      online: true,
      labels: { site: 'roof' },
      hostname: expect.any(String),
      arch: expect.any(String),
      agentVersion: expect.any(String),
      apps: { desired: 0, running: 0, failing: 0 },
    });

    // An app on the roof: desired and then running on edge-0 only.
    expect((await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('thermo', { site: 'roof' }))).status).toBe(200);
    await waitFor('thermo running on edge-0', () => follower.row('edge-0')?.apps.running === 1, { timeoutMs: 15_000 });
    expect(follower.row('edge-0')!.apps).toEqual({ desired: 1, running: 1, failing: 0 });
    expect(follower.row('edge-1')!.apps).toEqual({ desired: 0, running: 0, failing: 0 });

    // Metrics every second: the newest figures and a growing sparkline.
    await waitFor('three samples in edge-1’s sparkline', () => (follower.row('edge-1')?.history.cpu.length ?? 0) >= 3, {
      timeoutMs: 15_000,
    });
    const metered = follower.row('edge-1')!;
    expect(metered.metrics).toMatchObject({ ts: expect.any(String), cpuPercent: expect.any(Number), memPercent: expect.any(Number) });
    expect(metered.history.mem.length).toBeGreaterThanOrEqual(3);

    // An operator's label shows without a reload.
    expect((await http(hub.httpUrl, 'PATCH', '/api/v1/devices/edge-2/labels', { set: { floor: '3' } })).status).toBe(200);
    await waitFor('the new label', () => follower.row('edge-2')?.labels.floor === '3');

    // A device going offline turns offline within a second of the hub noticing.
    const dropped = sim.device('edge-2');
    await dropped.agent.close();
    let noticed = 0;
    await waitFor(
      'the hub to notice edge-2 offline',
      async () => {
        const res = await http<{ online: boolean }>(hub.httpUrl, 'GET', '/api/v1/devices/edge-2');
        noticed = Date.now();
        return !res.body.online;
      },
      { intervalMs: 20 },
    );
    await waitFor('edge-2 offline on the stream', () => follower.row('edge-2')?.online === false, { timeoutMs: 3000, intervalMs: 10 });
    const change = follower.events.find(
      (e) => e.event === FLEET_EVENT.changes && e.data.items.some((row) => row.id === 'edge-2' && !row.online),
    )!;
    expect(change.at - noticed).toBeLessThan(1100);

    // After the whole fleet, only changes, each carrying something; and edge-2, gone quiet, in none after its drop.
    const changes = follower.events.slice(1);
    expect(changes.every((e) => e.event === FLEET_EVENT.changes && e.data.items.length > 0)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const later = follower.events.filter((e) => e.at > change.at);
    expect(later.length).toBeGreaterThan(0);
    expect(later.flatMap((e) => e.data.items.map((row) => row.id))).not.toContain('edge-2');
    // At most one event a second (a little slack for timers).
    const all = follower.events.slice(1);
    for (let i = 1; i < all.length; i++) expect(all[i]!.at - all[i - 1]!.at).toBeGreaterThan(800);
  });

  it('seeds the sparklines of a restarted hub from the samples it stored', async () => {
    const topics = new Topics();
    let hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const device = await connectClient(hub.mqttUrl, { clientId: 'dev-seed' });
    await device.publishAsync(topics.device('dev-seed', 'state'), JSON.stringify(deviceState('dev-seed')), { qos: 1, retain: true });
    for (let seq = 1; seq <= 35; seq++) {
      const sample = metricsSample(seq);
      sample.host.cpuPercent = seq;
      await device.publishAsync(topics.device('dev-seed', 'metrics'), JSON.stringify(sample), { qos: 1 });
    }
    await waitFor('35 samples stored', async () => {
      const res = await http<{ samples: unknown[] }>(hub.httpUrl, 'GET', '/api/v1/devices/dev-seed/metrics?tail=100');
      return res.body.samples.length === 35;
    });
    await closeClient(device);

    hub = await hub.restart();
    const follower = await followFleet(hub, cleanup);
    await waitFor('the whole fleet', () => follower.events.length > 0);
    const row = follower.row('dev-seed')!;
    // The newest 30 of 35, oldest first.
    expect(row.history.cpu).toEqual(Array.from({ length: 30 }, (_, i) => i + 6));
    expect(row.history.mem).toEqual(Array(30).fill(25));
    expect(row.history.disk).toEqual(Array(30).fill(33.3));
    expect(row.metrics).toMatchObject({ cpuPercent: 35, memPercent: 25, diskPercent: 33.3, temperatureC: 48.5 });
    expect(row).toMatchObject({ online: false, hostname: 'dev-seed.local', arch: 'arm64', agentVersion: '0.1.0' });
  });

  it('takes the role devices.list takes: a viewer follows; no key, a wrong key or a device is refused', async () => {
    const hub = await startTestHub({ config: { allowAnonymous: false } });
    cleanup.add('hub', () => hub.close());
    const viewer = await createAccount(hub, 'wall', 'viewer');
    const device = await registerDevice(hub, 'dev-1', { site: 'roof' });

    const follower = await followFleet(hub, cleanup, bearer(viewer));
    await waitFor('the whole fleet', () => follower.events.length > 0);
    expect(follower.row('dev-1')).toMatchObject({ online: false, labels: { site: 'roof' }, metrics: null, agentVersion: null });

    for (const headers of [{}, bearer('wall.wrong'), bearer(device.secret)]) {
      const res = await http(hub.httpUrl, 'GET', '/api/v1/devices?follow=true', undefined, headers);
      expect(res.status).toBe(401);
    }
  });
});
