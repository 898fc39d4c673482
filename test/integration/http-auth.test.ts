/**
 * The HTTP API on a hub that requires credentials: bearer API keys and the
 * role each route needs, registration tokens traded for device secrets,
 * service accounts, and the bootstrap admin key file.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adminKey, bearer, createAccount, createToken, registerDevice } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';

describe('HTTP API with credentials required', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { allowAnonymous: false } }));
  });
  afterEach(() => cleanup.run());

  const get = (path: string, key?: string) => http(hub.httpUrl, 'GET', path, undefined, key ? bearer(key) : {});

  it('answers 401 with WWW-Authenticate without a key or with a wrong one; health, dashboard and hub key stay public', async () => {
    for (const headers of [{}, bearer('admin.wrong'), bearer('nobody.x'), { authorization: 'Basic YWRtaW46eA==' }]) {
      const res = await http(hub.httpUrl, 'GET', '/api/v1/apps', undefined, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(res.body.error.code).toBe('unauthorized');
    }
    expect((await get('/metrics')).status).toBe(401);
    expect((await get('/api/v1/events?follow=true')).status).toBe(401);
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/dashboard/config.json')).status).toBe(200);
    expect((await get('/api/v1/hub/key')).status).toBe(200);
  });

  it('gives each role its methods: 200 where allowed, 403 forbidden above it', async () => {
    const viewer = await createAccount(hub, 'grafana', 'viewer');
    const operator = await createAccount(hub, 'ci', 'operator');
    const admin = adminKey(hub);
    const apply = (key: string) => http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('thermo'), bearer(key));

    expect((await get('/api/v1/apps', viewer)).status).toBe(200);
    expect((await get('/api/v1/devices', viewer)).status).toBe(200);
    expect((await get('/metrics', viewer)).status).toBe(200);
    const refused = await apply(viewer);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/needs role operator/) });

    expect((await apply(operator)).status).toBe(200);
    expect((await get('/api/v1/tokens', operator)).status).toBe(403);
    expect((await http(hub.httpUrl, 'POST', '/api/v1/serviceaccounts', { name: 'x', role: 'admin' }, bearer(operator))).status).toBe(403);

    expect((await get('/api/v1/tokens', admin)).status).toBe(200);
    expect((await apply(admin)).body).toMatchObject({ name: 'thermo', changed: false });
    const accounts = await get('/api/v1/serviceaccounts', admin);
    expect(accounts.body.items.map((a: { name: string; role: string }) => [a.name, a.role])).toEqual([
      ['admin', 'admin'],
      ['ci', 'operator'],
      ['grafana', 'viewer'],
    ]);
    expect(JSON.stringify(accounts.body)).not.toContain(operator);
  });

  it('lets a viewer key plan a set of specs, as a pull request job does, but not apply it', async () => {
    const viewer = await createAccount(hub, 'pr-check', 'viewer');
    const set = { specs: [appSpec('thermo'), appSpec('relay')], scope: 'fleet' };

    const plan = await http(hub.httpUrl, 'POST', '/api/v1/plan', set, bearer(viewer));
    expect(plan.status).toBe(200);
    expect(plan.body).toMatchObject({
      dryRun: true,
      items: [
        { name: 'thermo', action: 'created' },
        { name: 'relay', action: 'created' },
      ],
    });
    // The plan stored nothing, and the same set is refused to the viewer as an apply, dry or not.
    expect((await get('/api/v1/apps', viewer)).body.items).toEqual([]);
    for (const body of [set, { ...set, dryRun: true }]) {
      const refused = await http(hub.httpUrl, 'POST', '/api/v1/apply', body, bearer(viewer));
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toMatch(/needs role operator/);
    }
  });

  it('writes the bootstrap admin key 0600 once, and keeps it across a restart', async () => {
    const file = join(hub.dataDir, 'admin.key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const key = adminKey(hub);
    expect(key).toMatch(/^admin\.[A-Za-z0-9_-]{43}$/);
    expect(hub.logs.matching('created the admin account; its API key is in this file')).toHaveLength(1);
    expect(JSON.stringify(hub.logs.records)).not.toContain(key.slice(6));

    const restarted = await hub.restart();
    cleanup.add('restarted hub', () => restarted.close());
    expect(adminKey(restarted)).toBe(key);
    expect(restarted.logs.matching('created the admin account; its API key is in this file')).toHaveLength(0);
    expect((await http(restarted.httpUrl, 'GET', '/api/v1/tokens', undefined, bearer(key))).status).toBe(200);
  });

  it('registers a device with a token: secret once, hub key, labels merged (the token’s win), listed at once', async () => {
    const { id, token, maxUses, expiresAt } = await createToken(hub, { labels: { site: 'roof', tier: 'gold' }, maxUses: 2 });
    expect(token).toMatch(/^flt-reg-[A-Za-z0-9_-]{32}$/);
    expect(maxUses).toBe(2);
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(23 * 3600_000);

    const res = await http(hub.httpUrl, 'POST', '/api/v1/register', { token, deviceId: 'gw-1', labels: { tier: 'bronze', zone: 'a' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      deviceId: 'gw-1',
      secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      hubKey: expect.any(String),
      mqtt: { port: hub.hub.ports.mqtt },
    });
    expect(res.body.hubKey).toBe((await get('/api/v1/hub/key')).body.hubKey);

    const device = await get('/api/v1/devices/gw-1', adminKey(hub));
    expect(device.status).toBe(200);
    expect(device.body.labels).toEqual({ site: 'roof', tier: 'gold', zone: 'a' });

    // Without a device id the hub picks one.
    const second = await http(hub.httpUrl, 'POST', '/api/v1/register', { token });
    expect(second.body.deviceId).toMatch(/^dev-[0-9a-f]{10}$/);
    const tokens = await get('/api/v1/tokens', adminKey(hub));
    expect(tokens.body.items).toEqual([
      { id, labels: { site: 'roof', tier: 'gold' }, maxUses: 2, uses: 2, expiresAt, revoked: false, createdAt: expect.any(String) },
    ]);

    // The device logs in with its secret.
    const mqtt = await connectClient(hub.mqttUrl, { clientId: 'gw-1', username: 'gw-1', password: res.body.secret });
    await closeClient(mqtt);
  });

  it('refuses used-up, expired, revoked and unknown tokens with 401', async () => {
    const once = await createToken(hub, { maxUses: 1 });
    expect((await http(hub.httpUrl, 'POST', '/api/v1/register', { token: once.token, deviceId: 'gw-1' })).status).toBe(200);
    const usedUp = await http(hub.httpUrl, 'POST', '/api/v1/register', { token: once.token, deviceId: 'gw-2' });
    expect(usedUp.status).toBe(401);
    expect(usedUp.body.error).toEqual({ code: 'unauthorized', message: 'registration token refused: used up' });

    const short = await createToken(hub, { expiresInSeconds: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const expired = await http(hub.httpUrl, 'POST', '/api/v1/register', { token: short.token, deviceId: 'gw-3' });
    expect(expired.status).toBe(401);
    expect(expired.body.error.message).toMatch(/expired/);

    const revokedToken = await createToken(hub);
    const revoke = await http(hub.httpUrl, 'DELETE', `/api/v1/tokens/${revokedToken.id}`, undefined, bearer(adminKey(hub)));
    expect(revoke.body).toEqual({ id: revokedToken.id, revoked: true });
    expect((await http(hub.httpUrl, 'POST', '/api/v1/register', { token: revokedToken.token, deviceId: 'gw-4' })).status).toBe(401);
    expect((await http(hub.httpUrl, 'POST', '/api/v1/register', { token: 'flt-reg-guess', deviceId: 'gw-5' })).status).toBe(401);

    // None of the refused ones made a device.
    const devices = await get('/api/v1/devices', adminKey(hub));
    expect(devices.body.items.map((d: { id: string }) => d.id)).toEqual(['gw-1']);
  });

  it('keeps device ids and account names apart, and an id taken once taken', async () => {
    await registerDevice(hub, 'gw-1');
    const taken = await http(hub.httpUrl, 'POST', '/api/v1/register', { token: (await createToken(hub)).token, deviceId: 'gw-1' });
    expect(taken.status).toBe(409);
    const clash = await http(hub.httpUrl, 'POST', '/api/v1/serviceaccounts', { name: 'gw-1', role: 'viewer' }, bearer(adminKey(hub)));
    expect(clash.status).toBe(409);
    await createAccount(hub, 'ci', 'operator');
    for (const deviceId of ['ci', 'ci.runner-1']) {
      const res = await http(hub.httpUrl, 'POST', '/api/v1/register', { token: (await createToken(hub)).token, deviceId });
      expect(res.status).toBe(409);
      expect(res.body.error.message).toMatch(/service account "ci"/);
    }
  });

  it('deletes a service account: its key stops working and its MQTT connections close; the last admin stays', async () => {
    const key = await createAccount(hub, 'ci', 'operator');
    const mqtt = await connectClient(hub.mqttUrl, { clientId: 'ci.deploy', username: 'ci', password: key });
    const closed = new Promise<void>((resolve) => mqtt.once('close', () => resolve()));
    const res = await http(hub.httpUrl, 'DELETE', '/api/v1/serviceaccounts/ci', undefined, bearer(adminKey(hub)));
    expect(res.body).toEqual({ name: 'ci', deleted: true });
    await closed;
    await closeClient(mqtt);
    expect((await get('/api/v1/apps', key)).status).toBe(401);

    const last = await http(hub.httpUrl, 'DELETE', '/api/v1/serviceaccounts/admin', undefined, bearer(adminKey(hub)));
    expect(last.status).toBe(400);
    expect(last.body.error.message).toMatch(/last admin/);
  });

  it('revokes a device that is not connected: disconnected false, and it cannot connect afterwards', async () => {
    const { secret } = await registerDevice(hub, 'gw-1');
    await registerDevice(hub, 'gw-2');
    const before = Date.now();
    const res = await http(hub.httpUrl, 'POST', '/api/v1/devices/gw-1/revoke', undefined, bearer(adminKey(hub)));
    expect(res.body).toEqual({ id: 'gw-1', revoked: true, disconnected: false });
    await expect(connectClient(hub.mqttUrl, { clientId: 'gw-1', username: 'gw-1', password: secret })).rejects.toMatchObject({ code: 4 });
    expect((await http(hub.httpUrl, 'POST', '/api/v1/devices/nope/revoke', undefined, bearer(adminKey(hub)))).status).toBe(404);

    // The device views say so: revokedAt on the revoked device only, in the list and alone.
    const one = await http(hub.httpUrl, 'GET', '/api/v1/devices/gw-1', undefined, bearer(adminKey(hub)));
    expect(Date.parse(one.body.revokedAt)).toBeGreaterThanOrEqual(before - 1000);
    const list = await http(hub.httpUrl, 'GET', '/api/v1/devices', undefined, bearer(adminKey(hub)));
    expect(list.body.items.map((d: { id: string; revokedAt?: string }) => [d.id, d.revokedAt])).toEqual([
      ['gw-1', one.body.revokedAt],
      ['gw-2', undefined],
    ]);
    expect(list.body.items[1]).not.toHaveProperty('revokedAt');

    // Its id stays claimed, and registering it again says why.
    const again = await http(hub.httpUrl, 'POST', '/api/v1/register', { token: (await createToken(hub)).token, deviceId: 'gw-1' });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toBe(
      `device "gw-1" was revoked (${one.body.revokedAt}) and its id cannot be reused: choose another --device-id`,
    );
  });
});

describe('HTTP API with anonymous access allowed (loopback default)', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('serves callers without a key as before, still checks a key that is given, and warns at start', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    expect((await http(hub.httpUrl, 'GET', '/api/v1/tokens')).status).toBe(200);
    expect((await http(hub.httpUrl, 'GET', '/api/v1/apps', undefined, bearer('admin.wrong'))).status).toBe(401);
    expect(
      hub.logs.matching('anonymous clients are allowed (full access without credentials); use --anonymous deny to require them'),
    ).toHaveLength(1);
  });
});
