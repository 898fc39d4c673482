/**
 * Authentication and the topic ACL on a real hub that requires credentials
 * (`allowAnonymous: false`), with real MQTT.js clients and mosquitto clients:
 * devices registered through the HTTP API with tokens, service accounts of
 * each role, the bootstrap admin key.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { IClientOptions, MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adminKey, bearer, createAccount, registerDevice } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';

const execFileAsync = promisify(execFile);
const ROOT = 'flotilla/v1';
const dev = (id: string, channel: string) => `${ROOT}/devices/${id}/${channel}`;

interface Response {
  correlationId: string | null;
  ok: boolean;
  result?: any;
  error?: { code: string; message: string };
}

describe('MQTT authentication and ACL', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { allowAnonymous: false } }));
  });
  afterEach(() => cleanup.run());

  async function client(options: IClientOptions): Promise<MqttClient> {
    const c = await connectClient(hub.mqttUrl, options);
    cleanup.add('client', () => closeClient(c));
    return c;
  }

  /** Connects as a freshly registered device. */
  async function device(id: string): Promise<MqttClient> {
    const { secret } = await registerDevice(hub, id);
    return client({ clientId: id, username: id, password: secret });
  }

  function closed(c: MqttClient): Promise<void> {
    return new Promise((resolve) => c.once('close', () => resolve()));
  }

  /** The SUBACK's granted codes, whether or not mqtt.js calls it a failure. */
  async function granted(c: MqttClient, filters: string[]): Promise<number[]> {
    return c.subscribeAsync(filters, { qos: 1 }).then(
      (grants) => grants.map((g) => g.qos),
      (err: Error & { packet?: { granted: number[] } }) => err.packet?.granted ?? [],
    );
  }

  it('keeps device A from subscribing to device B’s desired state and commands: SUBACK 0x80, nothing delivered', async () => {
    const b = await device('gw-b');
    const bInbox = new Inbox(b);
    await b.subscribeAsync([dev('gw-b', 'desired'), dev('gw-b', 'commands')], { qos: 1 });
    // B reports its state; the hub answers with B's desired document, retained.
    await b.publishAsync(dev('gw-b', 'state'), JSON.stringify(deviceState('gw-b')), { qos: 1 });
    await bInbox.waitFor(dev('gw-b', 'desired'));

    const a = await device('gw-a');
    const aInbox = new Inbox(a);
    expect(await granted(a, [dev('gw-b', 'desired'), dev('gw-b', 'commands'), dev('+', 'desired'), '#', dev('gw-a', 'desired')])).toEqual([
      128, 128, 128, 128, 1,
    ]);
    // A's own subscription works (its desired document is retained once it reports), B's never arrives.
    await a.publishAsync(dev('gw-a', 'state'), JSON.stringify(deviceState('gw-a')), { qos: 1 });
    await aInbox.waitFor(dev('gw-a', 'desired'));
    expect(aInbox.messages.map((m) => m.topic)).toEqual([dev('gw-a', 'desired')]);
  });

  it('closes device A’s connection when it publishes device B’s state, and delivers nothing', async () => {
    const watcher = await client({ clientId: 'root', username: 'admin', password: adminKey(hub) }).catch(() => undefined);
    // The admin account must use its own name as client id.
    expect(watcher).toBeUndefined();
    const admin = await client({ clientId: 'admin.watch', username: 'admin', password: adminKey(hub) });
    const inbox = new Inbox(admin);
    await admin.subscribeAsync(dev('+', 'state'), { qos: 1 });

    const a = await device('gw-a');
    const gone = closed(a);
    a.publish(dev('gw-b', 'state'), JSON.stringify(deviceState('gw-b')), { qos: 1 });
    await gone;

    const b = await device('gw-b');
    await b.publishAsync(dev('gw-b', 'state'), JSON.stringify({ ...deviceState('gw-b'), labels: { marker: 'real' } }), { qos: 1 });
    await inbox.waitFor(dev('gw-b', 'state'));
    expect(inbox.messages.map((m) => (m.json as { labels: unknown }).labels)).toEqual([{ marker: 'real' }]);
  });

  it('lets a viewer subscribe to telemetry but not publish', async () => {
    const key = await createAccount(hub, 'grafana', 'viewer');
    const viewer = await client({ clientId: 'grafana', username: 'grafana', password: key });
    expect(await granted(viewer, [dev('+', 'metrics'), dev('+', 'desired'), `${ROOT}/api/grafana/response`])).toEqual([1, 128, 128]);
    const gone = closed(viewer);
    viewer.publish(`${ROOT}/api/grafana/request`, JSON.stringify({ correlationId: 'x', method: 'apps.list' }), { qos: 1 });
    await gone;
  });

  it('holds an operator to its own client id and keeps admin methods from it, answering forbidden', async () => {
    const key = await createAccount(hub, 'ci', 'operator');
    await expect(connectClient(hub.mqttUrl, { clientId: 'deployer', username: 'ci', password: key })).rejects.toMatchObject({ code: 2 });

    const ci = await client({ clientId: 'ci.deploy', username: 'ci', password: key });
    const inbox = new Inbox(ci);
    const response = `${ROOT}/api/ci.deploy/response`;
    expect(await granted(ci, [response, `${ROOT}/api/+/response`])).toEqual([1, 128]);
    const call = async (correlationId: string, method: string) => {
      await ci.publishAsync(`${ROOT}/api/ci.deploy/request`, JSON.stringify({ correlationId, method, params: {} }), { qos: 1 });
      return inbox.waitFor<Response>(response, (r) => r.correlationId === correlationId);
    };
    expect(await call('r1', 'tokens.create')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await call('r2', 'serviceaccounts.list')).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await call('r3', 'apps.list')).toEqual({ correlationId: 'r3', ok: true, result: { items: [] } });
    // The refused request never reached the dispatcher: no token exists.
    const tokens = await http(hub.httpUrl, 'GET', '/api/v1/tokens', undefined, bearer(adminKey(hub)));
    expect(tokens.body).toEqual({ items: [] });

    // Another client id's request topic closes the connection.
    const gone = closed(ci);
    ci.publish(`${ROOT}/api/ci/request`, JSON.stringify({ correlationId: 'r4', method: 'apps.list' }), { qos: 1 });
    await gone;
  });

  it('lets an admin call admin methods over MQTT', async () => {
    const admin = await client({ clientId: 'admin', username: 'admin', password: adminKey(hub) });
    const inbox = new Inbox(admin);
    await admin.subscribeAsync(`${ROOT}/api/admin/response`, { qos: 1 });
    await admin.publishAsync(`${ROOT}/api/admin/request`, JSON.stringify({ correlationId: 'a1', method: 'tokens.list' }), { qos: 1 });
    expect(await inbox.waitFor<Response>(`${ROOT}/api/admin/response`)).toEqual({ correlationId: 'a1', ok: true, result: { items: [] } });
  });

  it.each([
    ['+', 'client id contains "+", "#" or "/"'],
    ['#', 'client id contains "+", "#" or "/"'],
    ['a/b', 'client id contains "+", "#" or "/"'],
    ['', 'empty client id'],
  ])('refuses client id %j with CONNACK 2, even to a dashboard user who may otherwise choose any id', async (clientId, reason) => {
    const dashboard = { username: 'wall', password: 'pw' };
    const second: TestHub = await startTestHub({ config: { allowAnonymous: false, readOnlyUsers: [dashboard] } });
    cleanup.add('second hub', () => second.close());
    const ok = await connectClient(second.mqttUrl, { clientId: 'wall-display-7', ...dashboard });
    await closeClient(ok);
    await expect(connectClient(second.mqttUrl, { clientId, ...dashboard, clean: true })).rejects.toMatchObject({ code: 2 });
    expect(second.logs.matching('MQTT client id refused').map((r) => r.reason)).toEqual([reason]);
  });

  it('refuses anonymous clients with CONNACK 5 and wrong credentials with CONNACK 4', async () => {
    await expect(connectClient(hub.mqttUrl, {})).rejects.toMatchObject({ code: 5 });
    const { secret } = await registerDevice(hub, 'gw-1');
    await expect(connectClient(hub.mqttUrl, { clientId: 'gw-1', username: 'gw-1', password: `${secret}x` })).rejects.toMatchObject({
      code: 4,
    });
    await expect(connectClient(hub.mqttUrl, { clientId: 'gw-1', username: 'admin', password: secret })).rejects.toMatchObject({ code: 4 });
    // A device's own secret for another id is no good either.
    await expect(connectClient(hub.mqttUrl, { clientId: 'gw-1', username: 'gw-2', password: secret })).rejects.toMatchObject({ code: 4 });
  });

  it('answers repeated failed logins from one address ever more slowly', async () => {
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const started = performance.now();
      await expect(connectClient(hub.mqttUrl, { clientId: 'x', username: 'mallory', password: 'guess' })).rejects.toMatchObject({
        code: 4,
      });
      times.push(performance.now() - started);
    }
    // 100, 200, 400, 800 ms (plus the round trip).
    expect(times[0]).toBeGreaterThanOrEqual(90);
    expect(times[3]).toBeGreaterThanOrEqual(750);
    expect(times[3]!).toBeGreaterThan(times[1]! * 2);
  });

  it('disconnects a revoked device within a second and refuses it afterwards', async () => {
    const { secret } = await registerDevice(hub, 'gw-1');
    const gw = await client({ clientId: 'gw-1', username: 'gw-1', password: secret });
    const gone = closed(gw);
    const started = performance.now();
    const res = await http(hub.httpUrl, 'POST', '/api/v1/devices/gw-1/revoke', undefined, bearer(adminKey(hub)));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: 'gw-1', revoked: true, disconnected: true });
    await gone;
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(connectClient(hub.mqttUrl, { clientId: 'gw-1', username: 'gw-1', password: secret })).rejects.toMatchObject({ code: 4 });
  });

  it('works with mosquitto clients: a device publishes its own state with its secret; a client id of + is refused', async () => {
    const { secret } = await registerDevice(hub, 'gw-m');
    const admin = await client({ clientId: 'admin', username: 'admin', password: adminKey(hub) });
    const inbox = new Inbox(admin);
    await admin.subscribeAsync(dev('gw-m', 'state'), { qos: 1 });
    const port = String(hub.hub.ports.mqtt);
    const common = ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv311'];
    await execFileAsync(
      'mosquitto_pub',
      [
        ...common,
        '-i',
        'gw-m',
        '-u',
        'gw-m',
        '-P',
        secret,
        '-q',
        '1',
        '-t',
        dev('gw-m', 'state'),
        '-m',
        JSON.stringify(deviceState('gw-m')),
      ],
      { timeout: 15_000 },
    );
    expect(await inbox.waitFor(dev('gw-m', 'state'))).toMatchObject({ deviceId: 'gw-m' });

    const refused = await execFileAsync(
      'mosquitto_sub',
      [...common, '-i', '+', '-u', 'gw-m', '-P', secret, '-t', dev('gw-m', 'desired'), '-W', '3'],
      {
        timeout: 15_000,
      },
    ).then(
      () => undefined,
      (err: Error & { stderr?: string }) => err,
    );
    expect(refused?.stderr).toMatch(/identifier rejected/i);
  });
});
