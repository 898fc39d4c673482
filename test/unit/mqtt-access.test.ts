/**
 * Who may do what on the broker: the pure decisions of broker/auth/ (client
 * ids, publish, subscribe, forward, the role per API method), the
 * authenticator over a real SQLite file, and how read-only dashboard users
 * and anonymous access are configured.
 */

import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AccountStore } from '../../broker/auth/accounts.js';
import { type ClientIdOwners, clientIdRefusal, decidePublish, mayReceive, maySubscribe } from '../../broker/auth/acl.js';
import { Authenticator } from '../../broker/auth/authenticator.js';
import type { DeviceCredentialStore } from '../../broker/auth/device-credentials.js';
import { hashSecret, VerifiedCache, verifySecret } from '../../broker/auth/hashing.js';
import type { Identity } from '../../broker/auth/identity.js';
import { LoginDelay } from '../../broker/auth/login-delay.js';
import { METHOD_ROLES, mayCall, requiredRole } from '../../broker/auth/permissions.js';
import { resolveHubConfig } from '../../broker/config.js';
import { peekRequest } from '../../broker/mqtt/access.js';
import { SqliteAccountStore } from '../../broker/store/sqlite/accounts.js';
import { type Db, openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteDeviceCredentialStore } from '../../broker/store/sqlite/device-credentials.js';
import { parseDashboardUsers } from '../../cli/commands/server.js';
import { Topics } from '../../shared/index.js';
import { scratchDir } from '../support/scratch.js';

const topics = new Topics('flotilla/v1');
const T = 'flotilla/v1';
const device = (deviceId: string): Identity => ({ kind: 'device', deviceId });
const account = (name: string, role: 'viewer' | 'operator' | 'admin'): Identity => ({ kind: 'account', name, role });
const dashboard: Identity = { kind: 'account', name: 'wall', role: 'viewer', dashboard: true };
const ANON: Identity = { kind: 'anonymous' };

describe('client ids', () => {
  const owners: ClientIdOwners = {
    isRegisteredDevice: async (id) => ['gw-1', 'gw-2'].includes(id),
    isAccount: async (name) => ['ci', 'admin'].includes(name),
  };

  it.each(['+', '#', 'a/b', 'gw-1/x', 'a+b', 'x'.repeat(129)])('refuses %j for everyone', async (id) => {
    for (const identity of [ANON, device(id), account('ci', 'admin'), dashboard]) {
      expect(await clientIdRefusal(identity, id, owners)).toBeDefined();
    }
  });

  it('refuses an empty id to every identity but an anonymous client, which gets one the broker assigns', async () => {
    for (const identity of [device('gw-1'), account('ci', 'admin'), dashboard]) {
      expect(await clientIdRefusal(identity, '', owners)).toBe('empty client id');
    }
    expect(await clientIdRefusal(ANON, '', owners)).toBeUndefined();
  });

  it('holds a device to its own id and an account to its name or name.suffix', async () => {
    expect(await clientIdRefusal(device('gw-1'), 'gw-1', owners)).toBeUndefined();
    expect(await clientIdRefusal(device('gw-1'), 'gw-2', owners)).toMatch(/its id/);
    expect(await clientIdRefusal(account('ci', 'operator'), 'ci', owners)).toBeUndefined();
    expect(await clientIdRefusal(account('ci', 'operator'), 'ci.deploy-7', owners)).toBeUndefined();
    expect(await clientIdRefusal(account('ci', 'operator'), 'cix', owners)).toBeDefined();
    expect(await clientIdRefusal(account('ci', 'operator'), 'admin', owners)).toBeDefined();
  });

  it('lets anonymous clients and dashboards use any id nobody owns, so they cannot take a session over', async () => {
    for (const identity of [ANON, dashboard]) {
      expect(await clientIdRefusal(identity, 'mqttjs_1234', owners)).toBeUndefined();
      expect(await clientIdRefusal(identity, 'dev-unregistered', owners)).toBeUndefined();
      for (const owned of ['gw-1', 'ci', 'ci.x', 'admin']) expect(await clientIdRefusal(identity, owned, owners)).toBeDefined();
    }
  });
});

describe('publish', () => {
  const allowed = (identity: Identity, clientId: string, topic: string) => decidePublish(identity, clientId, topic, topics).allow;

  it('lets a device publish its own state, status, events, logs, metrics and replies only', async () => {
    for (const channel of ['state', 'status', 'events', 'logs', 'metrics', 'replies']) {
      expect(allowed(device('gw-1'), 'gw-1', `${T}/devices/gw-1/${channel}`)).toBe(true);
      expect(allowed(device('gw-1'), 'gw-1', `${T}/devices/gw-2/${channel}`)).toBe(false);
    }
    for (const topic of [
      `${T}/devices/gw-1/desired`,
      `${T}/devices/gw-1/commands`,
      `${T}/api/gw-1/request`,
      `${T}/api/gw-1/response`,
      'other/topic',
    ]) {
      expect(allowed(device('gw-1'), 'gw-1', topic)).toBe(false);
    }
  });

  it('lets a viewer publish nothing', async () => {
    expect(allowed(account('v', 'viewer'), 'v', `${T}/api/v/request`)).toBe(false);
    expect(allowed(dashboard, 'x', `${T}/devices/gw-1/metrics`)).toBe(false);
  });

  it('lets operators and admins publish requests on their own client id only, checked per method later', async () => {
    for (const role of ['operator', 'admin'] as const) {
      expect(allowed(account('ci', role), 'ci.1', `${T}/api/ci.1/request`)).toBe('api-request');
      expect(allowed(account('ci', role), 'ci.1', `${T}/api/ci/request`)).toBe(false);
      expect(allowed(account('ci', role), 'ci.1', `${T}/api/ci.1/response`)).toBe(false);
      expect(allowed(account('ci', role), 'ci.1', `${T}/devices/gw-1/desired`)).toBe(false);
      expect(allowed(account('ci', role), 'ci.1', `${T}/devices/gw-1/state`)).toBe(false);
    }
  });

  it('keeps $SYS and the dropped-request topic from everyone; anonymous clients may publish the rest', async () => {
    for (const identity of [ANON, account('a', 'admin')]) {
      expect(allowed(identity, 'x', '$SYS/broker/x')).toBe(false);
      expect(allowed(identity, 'x', '$flotilla/forbidden')).toBe(false);
    }
    expect(allowed(ANON, 'svc', `${T}/devices/gw-1/desired`)).toBe(true);
  });
});

describe('subscribe', () => {
  const may = (identity: Identity, clientId: string, filter: string) => maySubscribe(identity, clientId, filter, topics);

  it('lets a device subscribe to its own desired and commands only', async () => {
    expect(may(device('gw-1'), 'gw-1', `${T}/devices/gw-1/desired`)).toBe(true);
    expect(may(device('gw-1'), 'gw-1', `${T}/devices/gw-1/commands`)).toBe(true);
    for (const filter of [
      `${T}/devices/gw-2/desired`,
      `${T}/devices/+/desired`,
      `${T}/devices/gw-1/state`,
      `${T}/devices/gw-1/#`,
      '#',
      '$SYS/#',
    ]) {
      expect(may(device('gw-1'), 'gw-1', filter)).toBe(false);
    }
  });

  it.each([
    `${T}/devices/+/metrics`,
    `${T}/devices/+/state`,
    `${T}/devices/+/status`,
    `${T}/devices/+/events`,
    `${T}/devices/+/logs`,
    `${T}/devices/dev-1/metrics`,
    `${T}/devices/pi.roof_2/state`,
  ])('lets a viewer subscribe to %s', (filter) => {
    expect(may(dashboard, 'x', filter)).toBe(true);
    expect(may(account('v', 'viewer'), 'v', filter)).toBe(true);
  });

  it.each([
    '#',
    '+/+/+/+/+',
    'flotilla/#',
    'flotilla/v1/#',
    'flotilla/v1/devices/#',
    'flotilla/v1/devices/+/#',
    'flotilla/v1/devices/dev-1/+',
    'flotilla/v1/devices/+/+',
    'flotilla/v1/devices/+/desired',
    'flotilla/v1/devices/dev-1/commands',
    'flotilla/v1/devices/dev-1/replies',
    'flotilla/v1/api/+/response',
    'flotilla/v1/api/svc/request',
    '$SYS/#',
    'flotilla/v1/devices/+/metrics/extra',
    'flotilla/v1/devices/Dev-1/metrics',
    'flotilla/v1/devices//metrics',
    'other/v1/devices/+/metrics',
    'flotilla/v2/devices/+/metrics',
  ])('refuses a viewer %s', (filter) => {
    expect(may(dashboard, 'x', filter)).toBe(false);
  });

  it('lets an operator subscribe to its own responses too, an admin to anything', async () => {
    expect(may(account('ci', 'operator'), 'ci.1', `${T}/api/ci.1/response`)).toBe(true);
    expect(may(account('ci', 'operator'), 'ci.1', `${T}/api/ci/response`)).toBe(false);
    expect(may(account('ci', 'operator'), 'ci.1', `${T}/api/+/response`)).toBe(false);
    expect(may(account('ci', 'operator'), 'ci.1', '#')).toBe(false);
    expect(may(account('root', 'admin'), 'root', '#')).toBe(true);
    expect(may(account('root', 'admin'), 'root', '$flotilla/#')).toBe(false);
  });
});

describe('forward', () => {
  const gets = (identity: Identity, clientId: string, topic: string) => mayReceive(identity, clientId, topic, topics);

  it('delivers desired and commands only to their device, whatever an admin subscribed to', async () => {
    for (const channel of ['desired', 'commands']) {
      const topic = `${T}/devices/gw-1/${channel}`;
      expect(gets(device('gw-1'), 'gw-1', topic)).toBe(true);
      expect(gets(device('gw-2'), 'gw-2', topic)).toBe(false);
      expect(gets(account('root', 'admin'), 'root', topic)).toBe(false);
    }
    expect(gets(account('root', 'admin'), 'root', `${T}/devices/gw-1/state`)).toBe(true);
  });

  it('delivers an API response only to its client; a dropped request to nobody', async () => {
    expect(gets(account('ci', 'operator'), 'ci.1', `${T}/api/ci.1/response`)).toBe(true);
    expect(gets(account('root', 'admin'), 'root', `${T}/api/ci.1/response`)).toBe(false);
    for (const identity of [ANON, account('root', 'admin')]) expect(gets(identity, 'x', '$flotilla/forbidden')).toBe(false);
  });

  it('leaves anonymous clients (while allowed) their full access', async () => {
    expect(gets(ANON, 'svc', `${T}/devices/gw-1/desired`)).toBe(true);
  });
});

describe('role per API method', () => {
  it('lets viewers read, operators deploy, admins manage who connects', async () => {
    expect(requiredRole('apps.list')).toBe('viewer');
    expect(requiredRole('logs.query')).toBe('viewer');
    expect(requiredRole('apps.apply')).toBe('operator');
    expect(requiredRole('secrets.set')).toBe('operator');
    expect(requiredRole('tokens.create')).toBe('admin');
    expect(requiredRole('serviceaccounts.list')).toBe('admin');
    expect(requiredRole('devices.revoke')).toBe('admin');
    expect(mayCall(account('v', 'viewer'), 'apps.apply')).toBe(false);
    expect(mayCall(account('o', 'operator'), 'apps.apply')).toBe(true);
    expect(mayCall(account('o', 'operator'), 'tokens.list')).toBe(false);
    expect(mayCall(device('gw-1'), 'apps.list')).toBe(false);
    expect(mayCall(ANON, 'tokens.create')).toBe(true);
  });

  it('closes a method nobody placed in the table to all but admins, except reads by their name', async () => {
    expect(requiredRole('apps.frobnicate')).toBe('admin');
    expect(requiredRole('things.list')).toBe('viewer');
    expect(requiredRole('tokens.get')).toBe('admin');
    expect(Object.values(METHOD_ROLES).every((r) => ['viewer', 'operator', 'admin'].includes(r))).toBe(true);
  });

  it('reads the method of a request without trusting its shape', async () => {
    expect(peekRequest(Buffer.from('{"correlationId":"c1","method":"apps.apply"}'))).toEqual({ method: 'apps.apply', correlationId: 'c1' });
    expect(peekRequest(Buffer.from('{"method":7}'))).toEqual({ method: undefined, correlationId: null });
    expect(peekRequest(Buffer.from('not json'))).toEqual({ method: undefined, correlationId: null });
    expect(peekRequest(Buffer.from('null'))).toEqual({ method: undefined, correlationId: null });
  });
});

describe('failed-login delay', () => {
  it('doubles from 100 ms to at most 10 s per address and fades when failures stop', async () => {
    let now = 0;
    const delay = new LoginDelay({ now: () => now });
    expect([1, 2, 3, 4].map(() => delay.fail('10.0.0.1'))).toEqual([100, 200, 400, 800]);
    expect(delay.fail('10.0.0.2')).toBe(100);
    for (let i = 0; i < 20; i++) delay.fail('10.0.0.1');
    expect(delay.fail('10.0.0.1')).toBe(10_000);
    now += 10 * 60_000;
    expect(delay.fail('10.0.0.1')).toBe(100);
  });
});

describe('authenticator', () => {
  let db: Db;
  let accounts: AccountStore;
  let credentials: DeviceCredentialStore;
  const auth = (allowAnonymous = false) =>
    new Authenticator({
      accounts,
      credentials,
      readOnlyUsers: [{ username: 'wall', password: 's3cret' }],
      allowAnonymous,
    });

  beforeEach(async () => {
    db = openDatabase(join(scratchDir('flotilla-auth-'), 'hub.db'));
    accounts = new SqliteAccountStore(db);
    credentials = new SqliteDeviceCredentialStore(db);
  });
  afterEach(async () => {
    db.close();
  });

  const pw = (value: string) => Buffer.from(value);

  it('knows service accounts by API key, devices by secret, dashboards by password', async () => {
    const key = (await accounts.create('ci', 'operator'))!;
    expect(key).toMatch(/^ci\.[A-Za-z0-9_-]{43}$/);
    await credentials.create('gw-1', await hashSecret('device-secret'));
    const a = auth();
    expect(await a.login('ci', pw(key))).toEqual({ ok: true, identity: { kind: 'account', name: 'ci', role: 'operator' } });
    expect(await a.login('gw-1', pw('device-secret'))).toEqual({ ok: true, identity: { kind: 'device', deviceId: 'gw-1' } });
    expect(await a.login('wall', pw('s3cret'))).toMatchObject({ ok: true, identity: { kind: 'account', role: 'viewer', dashboard: true } });
    expect(await a.bearer(`Bearer ${key}`)).toEqual({ ok: true, identity: { kind: 'account', name: 'ci', role: 'operator' } });
  });

  it('refuses wrong, unknown, revoked and anonymous credentials', async () => {
    const key = (await accounts.create('ci', 'operator'))!;
    await credentials.create('gw-1', await hashSecret('device-secret'));
    const a = auth();
    expect(await a.login('ci', pw(`${key}x`))).toMatchObject({ ok: false });
    expect(await a.login('ci', pw('device-secret'))).toMatchObject({ ok: false });
    expect(await a.login('gw-1', pw('wrong'))).toMatchObject({ ok: false, reason: 'wrong device secret' });
    expect(await a.login('mallory', pw('x'))).toMatchObject({ ok: false, reason: 'unknown username' });
    expect(await a.login('wall', pw('s3cre'))).toMatchObject({ ok: false, reason: 'wrong password' });
    // The username the hub's own client once used is nobody's now: the hub publishes in process.
    expect(await a.login('$flotilla-hub', pw('guess'))).toMatchObject({ ok: false, reason: 'unknown username' });
    expect(await a.login(undefined, undefined)).toMatchObject({ ok: false, anonymous: true });
    expect(await a.bearer(undefined)).toMatchObject({ ok: false, anonymous: true });
    expect(await a.bearer('Basic abc')).toMatchObject({ ok: false });
    expect(await auth(true).login(undefined, undefined)).toEqual({ ok: true, identity: { kind: 'anonymous' } });

    expect(await a.login('gw-1', pw('device-secret'))).toMatchObject({ ok: true });
    await credentials.revoke('gw-1');
    expect(await a.login('gw-1', pw('device-secret'))).toMatchObject({ ok: false, reason: 'device revoked' });
    await accounts.delete('ci');
    expect(await a.bearer(`Bearer ${key}`)).toMatchObject({ ok: false });
  });

  it('maps a verified certificate CN to its registered device; a different username is refused', async () => {
    await credentials.create('gw-1', await hashSecret('s'));
    const a = auth();
    expect(await a.login(undefined, undefined, 'gw-1')).toEqual({ ok: true, identity: { kind: 'device', deviceId: 'gw-1' } });
    expect(await a.login('gw-2', pw('s'), 'gw-1')).toMatchObject({ ok: false });
    // A CN naming no device says nothing: the password decides.
    expect(await a.login(undefined, undefined, 'stranger')).toMatchObject({ ok: false, anonymous: true });
  });

  it('stores only scrypt hashes, and remembers a success only against the same stored hash', async () => {
    const stored = await hashSecret('s');
    expect(stored).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(stored).not.toContain('s$');
    expect(await verifySecret('s', stored)).toBe(true);
    expect(await verifySecret('t', stored)).toBe(false);
    expect(await verifySecret('s', 'garbage')).toBe(false);
    const cache = new VerifiedCache();
    cache.add('device:gw-1', 's', stored);
    expect(cache.has('device:gw-1', 's', stored)).toBe(true);
    expect(cache.has('device:gw-1', 's', 'another-hash')).toBe(false);
    expect(cache.has('device:gw-1', 't', stored)).toBe(false);
  });
});

describe('read-only users in the hub configuration', () => {
  it('defaults to none', async () => {
    expect(resolveHubConfig({}).readOnlyUsers).toEqual([]);
  });

  it('names the bad key', async () => {
    expect(() => resolveHubConfig({ readOnlyUsers: [{ username: '', password: 'x' }] })).toThrow(/readOnlyUsers/);
    expect(() =>
      resolveHubConfig({
        readOnlyUsers: [
          { username: 'a', password: 'x' },
          { username: 'a', password: 'y' },
        ],
      }),
    ).toThrow(/readOnlyUsers: username "a" appears twice/);
  });

  it('parses --dashboard-user and FLOTILLA_DASHBOARD_USERS values: name:password, repeatable, comma-separated', async () => {
    expect(parseDashboardUsers('wall:s3cret')).toEqual([{ username: 'wall', password: 's3cret' }]);
    expect(parseDashboardUsers('grafana:a:b', [{ username: 'wall', password: 'x' }])).toEqual([
      { username: 'wall', password: 'x' },
      { username: 'grafana', password: 'a:b' },
    ]);
    expect(parseDashboardUsers('a:1,b:2,')).toEqual([
      { username: 'a', password: '1' },
      { username: 'b', password: '2' },
    ]);
    for (const bad of ['wall', 'wall:', ':pw', 'a:1,b']) expect(() => parseDashboardUsers(bad)).toThrow(/name:password/);
  });
});

describe('anonymous access in the hub configuration', () => {
  it('defaults to allowed on loopback only', async () => {
    expect(resolveHubConfig({}).allowAnonymous).toBe(true);
    expect(resolveHubConfig({ host: '::1' }).allowAnonymous).toBe(true);
    expect(resolveHubConfig({ host: 'localhost' }).allowAnonymous).toBe(true);
    expect(resolveHubConfig({ host: '0.0.0.0' }).allowAnonymous).toBe(false);
    expect(resolveHubConfig({ host: '192.168.1.5' }).allowAnonymous).toBe(false);
    expect(resolveHubConfig({ host: '0.0.0.0', allowAnonymous: true }).allowAnonymous).toBe(true);
    expect(resolveHubConfig({ allowAnonymous: false }).allowAnonymous).toBe(false);
  });
});
