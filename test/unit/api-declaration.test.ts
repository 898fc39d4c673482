/**
 * The API is declared once (shared/api/methods.ts) and the hub's method table,
 * role table and HTTP routes are derived from it. At run time: every declared
 * method is implemented, has a role and a route that reaches it, and nothing
 * undeclared is served. At compile time (typecheck covers this file): a
 * misspelt method or a wrong result shape does not compile.
 */

import { randomBytes } from 'node:crypto';
import type { TObject } from '@sinclair/typebox';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import type { Role } from '../../broker/auth/identity.js';
import { authMethods } from '../../broker/auth/methods.js';
import { METHOD_ROLES, requiredRole } from '../../broker/auth/permissions.js';
import { createApi, type HubApi } from '../../broker/dispatcher/api.js';
import type { ApiHandlersFor } from '../../broker/dispatcher/method.js';
import { Rollouts } from '../../broker/dispatcher/rollouts.js';
import { METHOD_ROUTES, requestParams } from '../../broker/http/routes.js';
import { auditMethods } from '../../broker/remote/audit-methods.js';
import { SECRETS_KEY_BYTES, SecretCipher } from '../../broker/store/secret-cipher.js';
import { SqliteAccountStore } from '../../broker/store/sqlite/accounts.js';
import { SqliteAppStore } from '../../broker/store/sqlite/apps.js';
import { SqliteAuditStore } from '../../broker/store/sqlite/audit.js';
import { type Db, openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteDeviceCredentialStore } from '../../broker/store/sqlite/device-credentials.js';
import { SqliteDeviceStore } from '../../broker/store/sqlite/devices.js';
import { SqliteRolloutStore } from '../../broker/store/sqlite/rollouts.js';
import { SqliteSecretStore } from '../../broker/store/sqlite/secrets.js';
import { SqliteTokenStore } from '../../broker/store/sqlite/tokens.js';
import { TelemetryIngest } from '../../broker/telemetry/ingest.js';
import { telemetryMethods } from '../../broker/telemetry/methods.js';
import { TELEMETRY_MIGRATIONS } from '../../broker/telemetry/migrations.js';
import { SqliteTelemetryReads } from '../../broker/telemetry/reads.js';
import { TelemetryStore } from '../../broker/telemetry/store.js';
import { HubClient } from '../../cli/client.js';
import {
  API,
  API_METHOD_NAMES,
  API_ROLES,
  type ApiMethodName,
  type ApiParams,
  type ApiResult,
  type ApiRole,
  type ApplyResult,
  type LogsResult,
  routeRequest,
} from '../../shared/index.js';
import { LogCapture } from '../support/logs.js';

const opened: Array<{ close(): void }> = [];
afterEach(() => {
  for (const item of opened.splice(0)) item.close();
});

/** The hub's whole method table over real (in-memory) SQLite stores, wired as the hub wires it. */
function hubApi(): HubApi {
  const { logger } = new LogCapture();
  const db: Db = openDatabase(':memory:');
  const telemetryDb = openDatabase(':memory:', TELEMETRY_MIGRATIONS);
  opened.push(db, telemetryDb);
  const cipher = new SecretCipher(randomBytes(SECRETS_KEY_BYTES));
  const apps = new SqliteAppStore(db);
  const devices = new SqliteDeviceStore(db, cipher);
  const secrets = new SqliteSecretStore(db, cipher);
  const store = new TelemetryStore(telemetryDb);
  const ingest = new TelemetryIngest({ store, logger });
  opened.push(ingest);
  return createApi({
    apps,
    devices,
    secrets,
    rollouts: new Rollouts({ apps, devices, rollouts: new SqliteRolloutStore(db), logger }),
    desiredMayHaveChanged: () => undefined,
    telemetry: telemetryMethods({ store: new SqliteTelemetryReads(store), ingest, devices, now: () => Date.now() }),
    auth: authMethods({
      accounts: new SqliteAccountStore(db),
      credentials: new SqliteDeviceCredentialStore(db),
      tokens: new SqliteTokenStore(db),
      devices,
      disconnect: () => 0,
    }),
    audit: auditMethods({ audit: new SqliteAuditStore(db), now: () => Date.now() }),
  });
}

/** A concrete path for `path`: each `:param` filled with a value valid for any param. */
const concrete = (path: string) => path.replace(/:[A-Za-z]+/g, 'x-1');

const propertiesOf = (schema: TObject) => Object.keys(schema.properties);

describe('the API declaration', () => {
  it('is implemented whole by the hub, which serves nothing undeclared', async () => {
    const api = hubApi();
    expect([...api.methods].sort()).toEqual([...API_METHOD_NAMES].sort());
    expect(await api.call('apps.list', {})).toEqual({ items: [] });
    await expect(api.call('apps.frobnicate', {})).rejects.toThrow(expect.objectContaining({ code: 'unknown_method' }));
  });

  it('checks params against the declared schema before a method runs', async () => {
    const api = hubApi();
    await expect(api.call('apps.get', { name: 'Not A Name' })).rejects.toThrow(expect.objectContaining({ code: 'invalid_request' }));
    await expect(api.call('devices.list', { extra: 1 })).rejects.toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  it('gives every method the role its declaration names, and the role table lists exactly the declared methods', () => {
    expect(Object.keys(METHOD_ROLES).sort()).toEqual([...API_METHOD_NAMES].sort());
    for (const name of API_METHOD_NAMES) {
      expect(API_ROLES).toContain(API[name].role);
      expect(requiredRole(name)).toBe(API[name].role);
      expect(METHOD_ROLES[name]).toBe(API[name].role);
    }
  });

  it('routes each declared HTTP path and verb to its own method, and to no other', () => {
    expect(METHOD_ROUTES.map((r) => r.name)).toEqual([...API_METHOD_NAMES]);
    for (const name of API_METHOD_NAMES) {
      const { method, path } = API[name].http;
      const path_ = concrete(path);
      const reached = METHOD_ROUTES.filter((r) => r.verb === method && r.pattern.test(path_)).map((r) => r.name);
      expect(reached, `${method} ${path}`).toEqual([name]);
    }
  });

  it('names only declared params in a route (path, query and body)', () => {
    for (const name of API_METHOD_NAMES) {
      const { params, http } = API[name];
      const declared = propertiesOf(params);
      const pathParams = [...http.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]);
      const bodyParam = typeof http.body === 'object' ? [http.body.param] : [];
      for (const param of [...pathParams, ...Object.keys(http.query ?? {}), ...bodyParam]) {
        expect(declared, `${name}: ${param}`).toContain(param);
      }
    }
  });
});

describe("the CLI's client and the hub's routes", () => {
  /** Params for `name` with a value in every place its route can carry one. */
  function sampleParams(name: ApiMethodName): Record<string, unknown> {
    const { params, http } = API[name];
    const sample: Record<string, unknown> = {};
    for (const key of propertiesOf(params)) {
      const kind = http.query?.[key];
      if (http.path.includes(`:${key}`)) sample[key] = 'a b/1';
      else if (kind !== undefined) sample[key] = kind === 'int' ? 7 : 'text';
      else if (typeof http.body === 'object' && http.body.param === key) sample[key] = { spec: [1, 'two'] };
      else if (http.body !== undefined) sample[key] = `${key}-value`;
    }
    return sample;
  }

  it('sends every method where the hub reads it: the hub rebuilds the same params from the request', async () => {
    for (const name of API_METHOD_NAMES) {
      const params = sampleParams(name);
      const { path, query, body } = routeRequest(API[name].http, params);
      const url = new URL(`http://hub${path}`);
      for (const [key, value] of Object.entries(query)) url.searchParams.set(key, String(value));
      const route = METHOD_ROUTES.find((r) => r.verb === API[name].http.method && r.pattern.test(url.pathname));
      expect(route?.name, name).toBe(name);
      const match = url.pathname.match(route!.pattern)!.map(decodeURIComponent) as RegExpMatchArray;
      const sentBody = body === undefined ? undefined : JSON.parse(JSON.stringify(body));
      const rebuilt = await requestParams(route!, match, async () => sentBody, url.searchParams);
      expect(rebuilt, name).toEqual(params);
    }
  });
});

describe('the API declaration, at compile time', () => {
  it('derives params and results from the declaration', () => {
    expectTypeOf<ApiResult<'apps.apply'>>().toEqualTypeOf<ApplyResult>();
    expectTypeOf<ApiResult<'logs.query'>>().toEqualTypeOf<LogsResult>();
    expectTypeOf<ApiParams<'apps.rollback'>>().toEqualTypeOf<{ name: string; toRevision?: number }>();
    expectTypeOf<ApiRole>().toEqualTypeOf<Role>();
    expectTypeOf(hubApi().call('secrets.list', {})).resolves.toEqualTypeOf<ApiResult<'secrets.list'>>();
  });

  it('does not compile a misspelt method name', () => {
    // @ts-expect-error: 'apps.aply' is not a declared method
    expectTypeOf<ApiResult<'apps.aply'>>().toBeObject();
    const handlers: ApiHandlersFor<'apps.list'> = {
      'apps.list': () => ({ items: [] }),
      // @ts-expect-error: a handler for an undeclared method
      'apps.lst': () => ({ items: [] }),
    };
    expectTypeOf(handlers).toHaveProperty('apps.list');
    expectTypeOf<'apps.aply'>().not.toExtend<ApiMethodName>();
  });

  it("types the CLI client's calls by the declaration", () => {
    const client = new HubClient('http://127.0.0.1:1');
    expectTypeOf(client.call<'apps.apply'>).returns.resolves.toEqualTypeOf<ApplyResult>();
    expectTypeOf(client.call<'logs.query'>)
      .parameter(1)
      .toEqualTypeOf<ApiParams<'logs.query'>>();
    // @ts-expect-error: 'apps.aply' is not a declared method
    expectTypeOf(() => client.call('apps.aply', {})).toBeFunction();
    // @ts-expect-error: apps.list answers a list of apps, not an apply result
    expectTypeOf(async (): Promise<ApplyResult> => client.call('apps.list', {})).toBeFunction();
    // @ts-expect-error: apps.get takes `name`
    expectTypeOf(() => client.call('apps.get', { nme: 'web' })).toBeFunction();
  });

  it('does not compile a handler whose result has the wrong shape', () => {
    const handlers: ApiHandlersFor<'apps.force'> = {
      // @ts-expect-error: revision must be a number, and `forced` is missing
      'apps.force': ({ name }) => ({ name, revision: 'one' }),
    };
    expectTypeOf(handlers['apps.force']).returns.toEqualTypeOf<ApiResult<'apps.force'> | Promise<ApiResult<'apps.force'>>>();
  });
});
