/**
 * Dashboards with read-only credentials over MQTT-over-WebSocket: they see
 * device telemetry live, and nothing they do reaches anyone else. Also the
 * example page the hub serves at /dashboard/.
 */
import { Script } from 'node:vm';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceState, Metrics } from '../../shared/index.js';
import { createAccount } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState, metricsSample } from '../support/fixtures.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';

const ROOT = 'flotilla/v1/devices';
const DASHBOARD = { username: 'wall', password: 'correct horse:battery' };

describe('read-only dashboards over MQTT/WebSocket', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeEach(async () => {
    hub = await startTestHub({ config: { readOnlyUsers: [DASHBOARD, { username: 'other', password: 'x' }] } });
    cleanup.add('hub', () => hub.close());
  });
  afterEach(() => cleanup.run());

  async function client(url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
    const c = await connectClient(url, options);
    cleanup.add('client', () => closeClient(c));
    return c;
  }

  const dashboard = () => client(hub.wsUrl, { username: DASHBOARD.username, password: DASHBOARD.password });

  it('receives live metrics and retained state that a device publishes over TCP', async () => {
    const device = await client(hub.mqttUrl, { clientId: 'dev-1' });
    const state = deviceState('dev-1', { apps: [{ name: 'thermo', revision: 1, phase: 'running', containers: [] }] });
    await device.publishAsync(`${ROOT}/dev-1/state`, JSON.stringify(state), { qos: 1, retain: true });

    const ws = await dashboard();
    const inbox = new Inbox(ws);
    const granted = await ws.subscribeAsync([`${ROOT}/+/metrics`, `${ROOT}/+/state`, `${ROOT}/+/status`], { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual([1, 1, 1]);
    expect(await inbox.waitFor<DeviceState>(`${ROOT}/dev-1/state`)).toEqual(state);

    for (let seq = 1; seq <= 3; seq++) {
      await device.publishAsync(`${ROOT}/dev-1/metrics`, JSON.stringify(metricsSample(seq)), { qos: 0 });
    }
    await inbox.waitFor<Metrics>(`${ROOT}/dev-1/metrics`, (m) => m.seq === 3);
    expect(inbox.on(`${ROOT}/dev-1/metrics`).map((m) => (m.json as Metrics).seq)).toEqual([1, 2, 3]);
  });

  it('refuses subscriptions outside device telemetry with 0x80 and keeps the rest of the SUBSCRIBE', async () => {
    const ws = await dashboard();
    const inbox = new Inbox(ws);
    const filters = [
      `${ROOT}/+/desired`,
      '#',
      `${ROOT}/dev-1/+`,
      `${ROOT}/dev-1/commands`,
      'flotilla/v1/api/+/request',
      '$SYS/#',
      `${ROOT}/dev-1/metrics`,
    ];
    // mqtt.js rejects a SUBACK holding any 0x80, with the packet attached.
    const refusal = await ws.subscribeAsync(filters, { qos: 1 }).then(
      () => undefined,
      (err: Error & { packet?: { granted: number[] } }) => err,
    );
    expect(refusal?.message).toMatch(/Subscribe error/);
    expect(refusal?.packet?.granted).toEqual([128, 128, 128, 128, 128, 128, 1]);

    // A command for the device does not reach the dashboard; the metrics after it do.
    const service = await client(hub.mqttUrl);
    await service.publishAsync(
      `${ROOT}/dev-1/commands`,
      JSON.stringify({ id: 'c1', type: 'restart', expiresAt: new Date().toISOString() }),
      {
        qos: 1,
      },
    );
    await service.publishAsync(`${ROOT}/dev-1/metrics`, JSON.stringify(metricsSample(9)), { qos: 1 });
    await inbox.waitFor(`${ROOT}/dev-1/metrics`);
    expect(inbox.messages.map((m) => m.topic)).toEqual([`${ROOT}/dev-1/metrics`]);
  });

  it('drops what a read-only client publishes and closes its connection', async () => {
    const watcher = await client(hub.mqttUrl);
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(`${ROOT}/dev-1/desired`, { qos: 1 });

    const ws = await dashboard();
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.publish(`${ROOT}/dev-1/desired`, JSON.stringify({ forged: true }), { qos: 0 });
    await closed;

    // Anything published after the refusal arrives; the forged message never did.
    const service = await client(hub.mqttUrl);
    await service.publishAsync(`${ROOT}/dev-1/desired`, JSON.stringify({ marker: true }), { qos: 1 });
    await inbox.waitFor(`${ROOT}/dev-1/desired`, (p: { marker?: boolean }) => p.marker === true);
    expect(inbox.messages.map((m) => m.json)).toEqual([{ marker: true }]);
  });

  it.each([
    ['a wrong password', { username: DASHBOARD.username, password: 'correct horse' }],
    ['another user’s password', { username: DASHBOARD.username, password: 'x' }],
    ['an unknown username', { username: 'mallory', password: DASHBOARD.password }],
  ])('refuses %s at CONNECT with return code 4', async (_what, credentials) => {
    const attempt = connectClient(hub.wsUrl, credentials);
    await expect(attempt).rejects.toMatchObject({ code: 4 });
  });

  it('takes a viewer service account too, under the client id the example page uses (<name>.dashboard-…)', async () => {
    const key = await createAccount(hub, 'grafana', 'viewer');
    const ws = await client(hub.wsUrl, { clientId: 'grafana.dashboard-1a2b3c4d', username: 'grafana', password: key });
    const granted = await ws.subscribeAsync([`${ROOT}/+/metrics`], { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual([1]);
    // Any other id is refused: a service account connects as itself.
    await expect(connectClient(hub.wsUrl, { clientId: 'flotilla-dashboard-1', username: 'grafana', password: key })).rejects.toMatchObject({
      code: 2,
    });
  });

  it('leaves clients without a username their full access', async () => {
    const anonymous = await client(hub.wsUrl);
    const granted = await anonymous.subscribeAsync([`${ROOT}/+/desired`, '#'], { qos: 1 });
    expect(granted.map((g) => g.qos)).toEqual([1, 1]);
  });
});

describe('GET /dashboard/', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeEach(async () => {
    hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
  });
  afterEach(() => cleanup.run());

  it('serves the example page, its script and mqtt.js, and tells the page where the WebSocket listener is', async () => {
    const page = await fetch(`${hub.httpUrl}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    expect(html).toContain('<script src="mqtt.min.js"></script>');
    expect(html).toContain('<script src="dashboard.js"></script>');

    for (const [file, minBytes] of [
      ['dashboard.js', 1000],
      ['mqtt.min.js', 100_000],
    ] as const) {
      const res = await fetch(`${hub.httpUrl}/dashboard/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get('content-type'), file).toBe('text/javascript; charset=utf-8');
      const source = await res.text();
      expect(source.length, file).toBeGreaterThan(minBytes);
      expect(() => new Script(source, { filename: file }), file).not.toThrow();
    }

    const config = await fetch(`${hub.httpUrl}/dashboard/config.json`);
    expect(await config.json()).toEqual({ wsPort: hub.hub.ports.ws, topicRoot: 'flotilla/v1' });

    const bare = await fetch(`${hub.httpUrl}/dashboard`, { redirect: 'manual' });
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/dashboard/');
    expect((await fetch(`${hub.httpUrl}/dashboard/package.json`)).status).toBe(404);
    expect((await fetch(`${hub.httpUrl}/dashboard/%2e%2e%2fpackage.json`)).status).toBe(404);
  });
});
