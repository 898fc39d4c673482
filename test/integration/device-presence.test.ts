/**
 * Online and last seen, as `flotilla get devices` shows them: a device behind
 * a half-open link is marked offline by its will once its keepalive lapses,
 * with `lastSeen` from before the stall; it comes back online by itself
 * when the link does; and a client that disconnects without reporting
 * itself offline is marked offline too.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Link } from '../../agent/link.js';
import { type DeviceView, Topics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import { deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub } from '../support/hub.js';
import { connectClient } from '../support/mqtt-client.js';
import { runCli } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const topics = new Topics();
const logger = pino({ level: 'silent' });

describe('device presence', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function device(httpUrl: string, id: string): Promise<DeviceView> {
    const r = await http<DeviceView>(httpUrl, 'GET', `/api/v1/devices/${id}`);
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    return r.body;
  }

  /** The device's row of `flotilla get devices`, split into columns. */
  async function row(httpUrl: string, id: string): Promise<string[]> {
    const result = await runCli(['--hub', httpUrl, 'get', 'devices']);
    expect(result.code, result.stderr).toBe(0);
    const line = result.stdout.split('\n').find((l) => l.startsWith(`${id} `));
    if (!line) throw new Error(`no row for ${id} in:\n${result.stdout}`);
    return line.trim().split(/\s{2,}/);
  }

  it('marks a device behind a half-open link offline by its will, keeping when it was last seen', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const port = Number(new URL(hub.mqttUrl).port);
    const proxy = await startFaultProxy({ targetPort: port });
    cleanup.add('proxy', () => proxy.close());
    const link = new Link({
      hubUrl: proxy.url,
      deviceId: 'dev-presence',
      topics,
      logger,
      onDesired: () => undefined,
      stateIntervalMs: 0,
      keepaliveSeconds: 1,
      reconnect: { baseMs: 100, maxMs: 500 },
    });
    cleanup.add('link', () => link.close());
    link.publishState(deviceState('dev-presence'));
    await waitFor('online', async () => (await device(hub.httpUrl, 'dev-presence')).online);
    expect((await row(hub.httpUrl, 'dev-presence'))[1]).toBe('yes');

    const stalledAt = Date.now();
    proxy.stall();
    // The broker gives up after 1.5 keepalives without a packet and publishes the will.
    await waitFor('offline', async () => !(await device(hub.httpUrl, 'dev-presence')).online, { timeoutMs: 10_000 });
    const offline = await device(hub.httpUrl, 'dev-presence');
    expect(Date.parse(offline.lastSeen!)).toBeLessThanOrEqual(stalledAt + 500);
    const cells = await row(hub.httpUrl, 'dev-presence');
    expect(cells[1]).toBe('no');
    expect(cells.at(-1)).toMatch(/^\d+s$/);

    proxy.resume();
    await waitFor('online again', async () => (await device(hub.httpUrl, 'dev-presence')).online, { timeoutMs: 10_000 });
    expect(Date.parse((await device(hub.httpUrl, 'dev-presence')).lastSeen!)).toBeGreaterThan(stalledAt);
  });

  it('marks a device offline when its connection closes without an offline report', async () => {
    const hub = await startTestHub({ logLevel: 'info' });
    cleanup.add('hub', () => hub.close());
    // A client with no will that says DISCONNECT: the broker publishes nothing for it.
    const client = await connectClient(hub.mqttUrl, { clientId: 'dev-quiet' });
    await client.publishAsync(topics.device('dev-quiet', 'state'), JSON.stringify(deviceState('dev-quiet')), { qos: 1, retain: true });
    await waitFor('online', async () => (await device(hub.httpUrl, 'dev-quiet')).online);
    await client.endAsync();
    await waitFor('offline', async () => !(await device(hub.httpUrl, 'dev-quiet')).online, { timeoutMs: 5_000 });
    expect(hub.logs.records.some((r) => r.msg === 'device connection closed' && r.deviceId === 'dev-quiet')).toBe(true);
  });
});
