/**
 * Every method of the hub's API, declared once (see declare.ts for what a
 * declaration holds). The hub's method table must implement exactly these
 * (broker/dispatcher/method.ts), its HTTP routes and role table are read from
 * here (broker/http/routes.ts, broker/auth/permissions.ts), and the CLI's
 * client calls them by name (cli/client.ts). Over MQTT a request names the
 * method: `{correlationId, method: 'apps.apply', params: {spec}}`.
 *
 * Roles: viewer reads (lists, gets, queries, history, rollout status, top);
 * operator deploys (apps, rollouts), labels devices, sets secrets; admin
 * manages who may connect (registration tokens, service accounts, revoking
 * devices).
 *
 * The order is the HTTP route table's: where two methods share a path, the
 * first one's verb comes first in a 405's `Allow` header.
 */
import { type Static, Type } from '@sinclair/typebox';
import { LABEL_KEY_PATTERN } from '../ids.js';
import { DeviceId, Labels, Name } from '../schemas/spec.js';
import type { EventsResult, LogsResult, MetricsResult, TopResult } from '../telemetry-api.js';
import {
  API_ROLES,
  type DeviceRevoked,
  type ServiceAccountCreated,
  type ServiceAccountInfo,
  type TokenCreated,
  type TokenInfo,
  type TokenRevoked,
} from './access.js';
import { type ApiMethod, declareMethod, type Returns, returns } from './declare.js';
import type {
  AppDetail,
  AppHistory,
  ApplyResult,
  AppSummary,
  Deleted,
  DeviceView,
  ForceResult,
  List,
  RetryResult,
  RollbackResult,
  RolloutStatus,
  SecretInfo,
} from './results.js';

/** Secret values are small (passwords, tokens, keys, certificates): they travel inside every desired document that needs them. */
export const MAX_SECRET_BYTES = 65536;
/** The longest a registration token may stay valid: ten years. */
export const MAX_TOKEN_EXPIRES_SECONDS = 10 * 365 * 24 * 3600;

const strict = { additionalProperties: false } as const;
const NoParams = Type.Object({}, strict);
const ByName = Type.Object({ name: Name }, strict);
const ByDeviceId = Type.Object({ id: DeviceId }, strict);
/** Registration token ids (`tokens.revoke`): opaque, not device ids. */
const ByTokenId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, strict);
/** A duration back from now (`10m`) or an RFC 3339 time; the hub parses it. */
const Since = Type.String({ minLength: 1, maxLength: 64 });
const Count = Type.Integer({ minimum: 0 });

const APP = '/api/v1/apps/:name';

export const API = {
  'apps.list': declareMethod({
    params: NoParams,
    result: returns<List<AppSummary>>(),
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/apps' },
  }),
  /** The body is the spec itself, JSON or YAML. */
  'apps.apply': declareMethod({
    params: Type.Object({ spec: Type.Unknown() }, strict),
    result: returns<ApplyResult>(),
    role: 'operator',
    http: { method: 'POST', path: '/api/v1/apps', body: { param: 'spec' } },
  }),
  'apps.get': declareMethod({
    params: ByName,
    result: returns<AppDetail>(),
    role: 'viewer',
    http: { method: 'GET', path: APP },
  }),
  'apps.delete': declareMethod({
    params: ByName,
    result: returns<Deleted>(),
    role: 'operator',
    http: { method: 'DELETE', path: APP },
  }),
  'apps.history': declareMethod({
    params: ByName,
    result: returns<AppHistory>(),
    role: 'viewer',
    http: { method: 'GET', path: `${APP}/revisions` },
  }),
  /** Without `toRevision` (or without a body at all), back to the revision before the current one. */
  'apps.rollback': declareMethod({
    params: Type.Object({ name: Name, toRevision: Type.Optional(Type.Integer({ minimum: 1 })) }, strict),
    result: returns<RollbackResult>(),
    role: 'operator',
    http: { method: 'POST', path: `${APP}/rollback`, body: 'optional-object' },
  }),
  /** Swap the current revision in even where the app holds its update lock. */
  'apps.force': declareMethod({
    params: ByName,
    result: returns<ForceResult>(),
    role: 'operator',
    http: { method: 'POST', path: `${APP}/force` },
  }),
  /** The same spec as a new revision: devices try it again. */
  'apps.retry': declareMethod({
    params: ByName,
    result: returns<RetryResult>(),
    role: 'operator',
    http: { method: 'POST', path: `${APP}/retry` },
  }),
  'rollouts.status': declareMethod({
    params: ByName,
    result: returns<RolloutStatus>(),
    role: 'viewer',
    http: { method: 'GET', path: `${APP}/rollout` },
  }),
  'rollouts.pause': declareMethod({
    params: ByName,
    result: returns<RolloutStatus>(),
    role: 'operator',
    http: { method: 'POST', path: `${APP}/rollout/pause` },
  }),
  'rollouts.resume': declareMethod({
    params: ByName,
    result: returns<RolloutStatus>(),
    role: 'operator',
    http: { method: 'POST', path: `${APP}/rollout/resume` },
  }),
  /** Every device back on the revision it ran before; the app's current revision stays the new one. */
  'rollouts.abort': declareMethod({
    params: ByName,
    result: returns<RolloutStatus>(),
    role: 'operator',
    http: { method: 'POST', path: `${APP}/rollout/abort` },
  }),
  'devices.list': declareMethod({
    params: NoParams,
    result: returns<List<DeviceView>>(),
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/devices' },
  }),
  'devices.get': declareMethod({
    params: ByDeviceId,
    result: returns<DeviceView>(),
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/devices/:id' },
  }),
  /** Operator labels: `set` adds or overrides, `remove` drops (a label the agent reports gets a tombstone). */
  'devices.label': declareMethod({
    params: Type.Object(
      {
        id: DeviceId,
        set: Type.Optional(Labels),
        remove: Type.Optional(Type.Array(Type.String({ pattern: LABEL_KEY_PATTERN }))),
      },
      strict,
    ),
    result: returns<DeviceView>(),
    role: 'operator',
    http: { method: 'PATCH', path: '/api/v1/devices/:id/labels', body: 'object' },
  }),
  'secrets.list': declareMethod({
    params: NoParams,
    result: returns<List<SecretInfo>>(),
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/secrets' },
  }),
  /**
   * `value` is text; `valueBase64` carries any bytes (a key file that is not
   * UTF-8). Exactly one of them, at most 64 KiB either way; the answer never
   * echoes it.
   */
  'secrets.set': declareMethod({
    params: Type.Object(
      {
        name: Name,
        value: Type.Optional(Type.String({ maxLength: MAX_SECRET_BYTES })),
        valueBase64: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength: Math.ceil(MAX_SECRET_BYTES / 3) * 4 })),
      },
      strict,
    ),
    result: returns<{ name: string }>(),
    role: 'operator',
    http: { method: 'PUT', path: '/api/v1/secrets/:name', body: 'object' },
  }),
  'secrets.delete': declareMethod({
    params: ByName,
    result: returns<Deleted>(),
    role: 'operator',
    http: { method: 'DELETE', path: '/api/v1/secrets/:name' },
  }),
  /** `?follow=true` on the same route streams (broker/telemetry/follow.ts). */
  'logs.query': declareMethod({
    params: Type.Object(
      {
        device: DeviceId,
        app: Type.Optional(Name),
        since: Type.Optional(Since),
        tail: Type.Optional(Count),
        afterId: Type.Optional(Count),
      },
      strict,
    ),
    result: returns<LogsResult>(),
    role: 'viewer',
    http: {
      method: 'GET',
      path: '/api/v1/devices/:device/logs',
      query: { app: 'text', since: 'text', tail: 'int', afterId: 'int' },
    },
  }),
  /** `?follow=true` on the same route streams (broker/telemetry/follow.ts). */
  'events.query': declareMethod({
    params: Type.Object(
      {
        device: Type.Optional(DeviceId),
        app: Type.Optional(Name),
        since: Type.Optional(Since),
        tail: Type.Optional(Count),
        afterId: Type.Optional(Count),
      },
      strict,
    ),
    result: returns<EventsResult>(),
    role: 'viewer',
    http: {
      method: 'GET',
      path: '/api/v1/events',
      query: { device: 'text', app: 'text', since: 'text', tail: 'int', afterId: 'int' },
    },
  }),
  'metrics.query': declareMethod({
    params: Type.Object({ device: DeviceId, since: Type.Optional(Since), tail: Type.Optional(Count) }, strict),
    result: returns<MetricsResult>(),
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/devices/:device/metrics', query: { since: 'text', tail: 'int' } },
  }),
  'devices.top': declareMethod({
    params: NoParams,
    result: returns<TopResult>(),
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/top' },
  }),
  'tokens.create': declareMethod({
    params: Type.Object(
      {
        labels: Type.Optional(Labels),
        maxUses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        expiresInSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TOKEN_EXPIRES_SECONDS })),
      },
      strict,
    ),
    result: returns<TokenCreated>(),
    role: 'admin',
    http: { method: 'POST', path: '/api/v1/tokens', body: 'optional-object' },
  }),
  'tokens.list': declareMethod({
    params: NoParams,
    result: returns<List<TokenInfo>>(),
    role: 'admin',
    http: { method: 'GET', path: '/api/v1/tokens' },
  }),
  'tokens.revoke': declareMethod({
    params: ByTokenId,
    result: returns<TokenRevoked>(),
    role: 'admin',
    http: { method: 'DELETE', path: '/api/v1/tokens/:id' },
  }),
  /** Its credentials stop working and its connection is closed. */
  'devices.revoke': declareMethod({
    params: ByDeviceId,
    result: returns<DeviceRevoked>(),
    role: 'admin',
    http: { method: 'POST', path: '/api/v1/devices/:id/revoke' },
  }),
  'serviceaccounts.create': declareMethod({
    params: Type.Object({ name: Name, role: Type.Union(API_ROLES.map((r) => Type.Literal(r))) }, strict),
    result: returns<ServiceAccountCreated>(),
    role: 'admin',
    http: { method: 'POST', path: '/api/v1/serviceaccounts', body: 'object' },
  }),
  'serviceaccounts.list': declareMethod({
    params: NoParams,
    result: returns<List<ServiceAccountInfo>>(),
    role: 'admin',
    http: { method: 'GET', path: '/api/v1/serviceaccounts' },
  }),
  'serviceaccounts.delete': declareMethod({
    params: ByName,
    result: returns<Deleted>(),
    role: 'admin',
    http: { method: 'DELETE', path: '/api/v1/serviceaccounts/:name' },
  }),
} satisfies Record<string, ApiMethod>;

export type Api = typeof API;
export type ApiMethodName = keyof Api;
/** What a caller sends: the params schema's static type. */
export type ApiParams<M extends ApiMethodName> = Static<Api[M]['params']>;
/** What the method answers. */
export type ApiResult<M extends ApiMethodName> = Api[M]['result'] extends Returns<infer R> ? R : never;

export function isApiMethod(name: string): name is ApiMethodName {
  return Object.hasOwn(API, name);
}

/** Every declared method, in declaration order. */
export const API_METHOD_NAMES: readonly ApiMethodName[] = Object.keys(API).filter(isApiMethod);
