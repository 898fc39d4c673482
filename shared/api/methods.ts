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
import { CloneType, type Static, type TSchema, Type } from '@sinclair/typebox';
import { LABEL_KEY_PATTERN, MAX_SOURCE_LENGTH, SOURCE_PATTERN } from '../ids.js';
import { AgentVersion } from '../schemas/messages.js';
import { DeviceId, Duration, Labels, Name, RolloutPolicy } from '../schemas/spec.js';
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
  AgentTargetView,
  AgentUpgradeResult,
  AppDetail,
  AppHistory,
  ApplyAllResult,
  ApplyResult,
  AppRevision,
  AppSummary,
  AuditRecord,
  Deleted,
  DeviceView,
  ExportedApp,
  ForceResult,
  HubVersion,
  JobDetail,
  JobSummary,
  List,
  RetryResult,
  RollbackResult,
  RolloutStatus,
  SecretInfo,
} from './results.js';

/** Secret values are small (passwords, tokens, keys, certificates): they travel inside every desired document that needs them. */
export const MAX_SECRET_BYTES = 65536;
/** The most specs one `apps.applyAll` takes: a fleet's folder, and still one bounded request. */
export const MAX_APPLY_SPECS = 1000;
/** The largest HTTP body of an `apps.applyAll` or `apps.plan` (every other route takes 1 MiB); the CLI checks a set against it before sending. */
export const MAX_APPLY_BYTES = 8 * 1024 * 1024;
/** The longest a registration token may stay valid: ten years. */
export const MAX_TOKEN_EXPIRES_SECONDS = 10 * 365 * 24 * 3600;

const strict = { additionalProperties: false } as const;
/** `schema` with a description of its own: CloneType's options would not replace one it has (Name's). */
const described = <T extends TSchema>(schema: T, description: string): T => CloneType({ ...schema, description });
const NoParams = Type.Object({}, strict);
const ByName = Type.Object({ name: Name }, strict);
const ByDeviceId = Type.Object({ id: DeviceId }, strict);
/** Registration token ids (`tokens.revoke`): opaque, not device ids. */
const ByTokenId = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 64, description: 'the id `tokens.create` and `tokens.list` show, not the token' }) },
  strict,
);
/** The hub parses it (broker/telemetry/), so the schema bounds only its length. */
const Since = Type.String({ minLength: 1, maxLength: 64, description: 'a duration back from now (`10m`, `2d`) or an RFC 3339 time' });
/** Inclusive like `docker logs --until`: a record stamped exactly at it is kept. The hub refuses it with a follow stream, which has no end. */
const Until = Type.String({
  minLength: 1,
  maxLength: 64,
  description:
    'only records at or before it: a duration back from now (`10m`, `2d`) or an RFC 3339 time; not before `since`, not with `follow`',
});
const Tail = Type.Integer({ minimum: 0, description: 'keep the newest N of what matched (still returned oldest first)' });
const AfterId = Type.Integer({ minimum: 0, description: "only records stored after this id: a follower's cursor" });
/** The query methods' ceiling and defaults, as the reference states them. */
const QUERY_LIMITS = 'Without `since`, `tail` or `afterId`, the newest 100; one query returns at most 10,000.';
const ROLLOUT_ANSWER = "the app's [rollout](#rollout)";

const APP = '/api/v1/apps/:name';

/** What an app set carries: `apps.applyAll` adds `dryRun`; `apps.plan` is always one. */
const APP_SET_FIELDS = {
  specs: Type.Array(Type.Unknown({ description: 'an app spec ([spec.md](spec.md))' }), {
    minItems: 1,
    maxItems: MAX_APPLY_SPECS,
    description: 'the app specs, each app at most once',
  }),
  scope: Type.Optional(
    described(Name, 'the prune scope to record on every app of the set; an app recorded with another scope is a `conflict`'),
  ),
  prune: Type.Optional(Type.Boolean({ description: 'delete the apps recorded with `scope` that the set does not name; needs `scope`' })),
  expectPruned: Type.Optional(
    Type.Array(Name, {
      maxItems: MAX_APPLY_SPECS,
      description: 'the apps the caller expects prune to delete (from a dry run): any other set is a `conflict`, and nothing is stored',
    }),
  ),
  source: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: MAX_SOURCE_LENGTH,
      pattern: SOURCE_PATTERN,
      description: 'where the specs come from, such as `git:<commit>`: recorded on every new revision',
    }),
  ),
};
const APP_SET_ANSWER =
  '`{dryRun, source, items: [{name, action, revision, previousRevision, devices: {count, ids}, secrets, scope, previousScope, current?}], pruned: [{name, revision, scope, current?}]}`; `action` is `created`, `configured` or `unchanged`';

export const API = {
  'apps.list': declareMethod({
    summary: 'Every app, with how many devices it matches and how many run it.',
    params: NoParams,
    result: returns<List<AppSummary>>(),
    answers:
      '`{items: [{name, revision, scheduling, containers, devices: {matched, running}, createdAt, updatedAt, scope?}]}`; `scope` is the prune scope `apps.applyAll` recorded, absent for none',
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/apps' },
  }),
  'apps.apply': declareMethod({
    summary: "Stores the spec as the app's new revision, which the devices it schedules onto then run.",
    params: Type.Object({ spec: Type.Unknown({ description: 'the app spec ([spec.md](spec.md))' }) }, strict),
    result: returns<ApplyResult>(),
    answers: '`{name, revision, changed}`; an unchanged spec is `changed: false` and no new revision',
    role: 'operator',
    http: { method: 'POST', path: '/api/v1/apps', body: { param: 'spec' } },
  }),
  'apps.applyAll': declareMethod({
    summary:
      "Applies a set of app specs as one unit: every spec is checked first, and if any is refused nothing is stored. With `dryRun` it stores nothing and answers what it would do. With `scope` each app records that prune scope; `prune` then deletes the apps of that scope the set does not name. Errors name the spec as `specs[i]` in each issue's path. Over HTTP the body may be up to 8 MiB; an MQTT request is at most 768 KiB (a larger one is answered `invalid_request` naming the limit), some 700 specs of 1 KiB: send a larger set over HTTP.",
    params: Type.Object(
      { ...APP_SET_FIELDS, dryRun: Type.Optional(Type.Boolean({ description: 'check and plan, store nothing (as `apps.plan`)' })) },
      strict,
    ),
    result: returns<ApplyAllResult>(),
    answers: APP_SET_ANSWER,
    role: 'operator',
    http: { method: 'POST', path: '/api/v1/apply', body: 'object' },
  }),
  'apps.plan': declareMethod({
    summary:
      'What `apps.applyAll` would do with the same set, checked the same way and storing nothing: its dry run, open to viewers, so a job that only shows a change (`flotilla diff` on a pull request) needs no key that can deploy.',
    params: Type.Object(APP_SET_FIELDS, strict),
    result: returns<ApplyAllResult>(),
    answers: `${APP_SET_ANSWER}, \`dryRun\` always true`,
    role: 'viewer',
    http: { method: 'POST', path: '/api/v1/plan', body: 'object' },
  }),
  'apps.export': declareMethod({
    summary: 'Every app (or those of one prune scope) with its current spec exactly as it was applied, for writing back to files.',
    params: Type.Object({ scope: Type.Optional(described(Name, 'only the apps recorded with this prune scope')) }, strict),
    result: returns<List<ExportedApp>>(),
    answers: '`{items: [{name, revision, scope, spec}]}`, sorted by name',
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/app-specs', query: { scope: 'text' } },
  }),
  'apps.get': declareMethod({
    summary: 'One app: its current spec and how each device it is scheduled onto runs it.',
    params: ByName,
    result: returns<AppDetail>(),
    answers:
      '`{name, revision, spec, createdAt, updatedAt, devices: [{id, online, phase, message?, revision}], scope?}` (`phase`, `revision` null until the device reports the app; `scope` is the prune scope `apps.applyAll` recorded, absent for none)',
    role: 'viewer',
    http: { method: 'GET', path: APP },
  }),
  'apps.delete': declareMethod({
    summary: 'Removes the app from every device (named volumes are kept) and from the hub.',
    params: ByName,
    result: returns<Deleted>(),
    answers: '`{name, deleted: true}`',
    role: 'operator',
    http: { method: 'DELETE', path: APP },
  }),
  'apps.history': declareMethod({
    summary: 'Every revision of the app, newest first.',
    params: ByName,
    result: returns<AppHistory>(),
    answers:
      '`{name, current, items: [{revision, createdAt, specHash, images, current, cause?, source?}]}`; `cause` is `apply`, `rollback to N` or `retry of N`; `source` is what the `apps.applyAll` that made the revision named (`git:<commit>`), absent when none',
    role: 'viewer',
    http: { method: 'GET', path: `${APP}/revisions` },
  }),
  'apps.revision': declareMethod({
    summary: 'One revision of the app with its whole spec (`apps.history` lists them without); an unknown revision is `not_found`.',
    params: Type.Object({ name: Name, revision: Type.Integer({ minimum: 1, description: 'a revision `apps.history` lists' }) }, strict),
    result: returns<AppRevision>(),
    answers: '`{name, revision, spec, createdAt, current, cause?, source?}`',
    role: 'viewer',
    http: { method: 'GET', path: `${APP}/spec`, query: { revision: 'int' } },
  }),
  'apps.rollback': declareMethod({
    summary:
      'A new revision with the spec of an earlier one. A `toRevision` that does not exist is `not_found`; with no earlier revision it is `invalid_request`, and with a target whose secrets are gone `invalid_spec`.',
    params: Type.Object(
      {
        name: Name,
        toRevision: Type.Optional(
          Type.Integer({ minimum: 1, description: 'the revision whose spec comes back; default: the one before the current one' }),
        ),
      },
      strict,
    ),
    result: returns<RollbackResult>(),
    answers: "`{name, revision, changed, rolledBackTo}`; `changed: false`, and no new revision, when the target's spec is already current",
    role: 'operator',
    http: { method: 'POST', path: `${APP}/rollback`, body: 'optional-object' },
  }),
  'apps.force': declareMethod({
    summary: 'Devices swap the current revision in now, even where the app holds its update lock or its update window is closed.',
    params: ByName,
    result: returns<ForceResult>(),
    answers: '`{name, revision, forced: true}`',
    role: 'operator',
    http: { method: 'POST', path: `${APP}/force` },
  }),
  'apps.retry': declareMethod({
    summary: 'The current spec as a new revision, so devices try again a revision they rolled back.',
    params: ByName,
    result: returns<RetryResult>(),
    answers: '`{name, revision, retryOf}`',
    role: 'operator',
    http: { method: 'POST', path: `${APP}/retry` },
  }),
  'rollouts.status': declareMethod({
    summary: "The app's newest rollout; an app without one is `not_found`.",
    params: ByName,
    result: returns<RolloutStatus>(),
    answers: ROLLOUT_ANSWER,
    role: 'viewer',
    http: { method: 'GET', path: `${APP}/rollout` },
  }),
  'rollouts.pause': declareMethod({
    summary: 'Starts no more devices on the new revision; pausing a finished rollout is `invalid_request`.',
    params: ByName,
    result: returns<RolloutStatus>(),
    answers: ROLLOUT_ANSWER,
    role: 'operator',
    http: { method: 'POST', path: `${APP}/rollout/pause` },
  }),
  'rollouts.resume': declareMethod({
    summary: 'Goes on with the next devices; resuming a rollout that is not paused is `invalid_request`.',
    params: ByName,
    result: returns<RolloutStatus>(),
    answers: ROLLOUT_ANSWER,
    role: 'operator',
    http: { method: 'POST', path: `${APP}/rollout/resume` },
  }),
  'rollouts.abort': declareMethod({
    summary: "Every device back on the revision it ran before the rollout; the app's current revision stays the new one.",
    params: ByName,
    result: returns<RolloutStatus>(),
    answers: ROLLOUT_ANSWER,
    role: 'operator',
    http: { method: 'POST', path: `${APP}/rollout/abort` },
  }),
  'devices.list': declareMethod({
    summary: 'Every device.',
    params: NoParams,
    result: returns<List<DeviceView>>(),
    answers: '`{items: [device]}`, each device as `devices.get` answers it',
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/devices' },
  }),
  'devices.get': declareMethod({
    summary: 'One device: whether it is online, its labels, its revisions, its host and its apps.',
    params: ByDeviceId,
    result: returns<DeviceView>(),
    answers:
      "`{id, online, lastSeen, labels, operatorLabels, reportedLabels, desiredRevision, observedRevision, host, apps, runtimeError?, revokedAt?, idClash?, images?, downloads?}` (`apps` as the device's state reports them; [`idClash`](#idclash); [`images` and `downloads`](#image-downloads))",
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/devices/:id' },
  }),
  'devices.label': declareMethod({
    summary:
      'Sets and removes operator labels, which override the ones the agent reports; removing a reported label leaves a tombstone (`operatorLabels[k]: null`).',
    params: Type.Object(
      {
        id: DeviceId,
        set: Type.Optional(CloneType(Labels, { description: 'labels to add or override' })),
        remove: Type.Optional(Type.Array(Type.String({ pattern: LABEL_KEY_PATTERN }), { description: 'label keys to drop' })),
      },
      strict,
    ),
    result: returns<DeviceView>(),
    answers: 'the device, as `devices.get` answers it',
    role: 'operator',
    http: { method: 'PATCH', path: '/api/v1/devices/:id/labels', body: 'object' },
  }),
  'secrets.list': declareMethod({
    summary: 'Every secret, never its value.',
    params: NoParams,
    result: returns<List<SecretInfo>>(),
    answers: '`{items: [{name, updatedAt}]}`',
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/secrets' },
  }),
  'secrets.set': declareMethod({
    summary:
      'Creates or replaces a secret: exactly one of `value` and `valueBase64`, at most 64 KiB either way. Refused (`invalid_request`) when an app using the secret could not use the new value (bytes where an env value needs text).',
    params: Type.Object(
      {
        name: Name,
        value: Type.Optional(Type.String({ maxLength: MAX_SECRET_BYTES, description: 'the value as text' })),
        valueBase64: Type.Optional(
          Type.String({
            pattern: '^[A-Za-z0-9+/]*={0,2}$',
            maxLength: Math.ceil(MAX_SECRET_BYTES / 3) * 4,
            description: 'the value in base64: any bytes (a key file that is not UTF-8)',
          }),
        ),
      },
      strict,
    ),
    result: returns<{ name: string }>(),
    answers: '`{name}`, never the value',
    role: 'operator',
    http: { method: 'PUT', path: '/api/v1/secrets/:name', body: 'object' },
  }),
  'secrets.delete': declareMethod({
    summary: 'Deletes a secret; refused (`invalid_request`) while an app uses it.',
    params: ByName,
    result: returns<Deleted>(),
    answers: '`{name, deleted: true}`',
    role: 'operator',
    http: { method: 'DELETE', path: '/api/v1/secrets/:name' },
  }),
  /** `?follow=true` on the same route streams (broker/telemetry/follow.ts), so it is no param. */
  'logs.query': declareMethod({
    summary: `A device's log lines, oldest first. ${QUERY_LIMITS} Over HTTP, \`follow\` streams them ([http.md](http.md#following-logs-and-events)).`,
    params: Type.Object(
      {
        device: DeviceId,
        app: Type.Optional(described(Name, "only this app's lines (a job's of the same name are not matched)")),
        job: Type.Optional(described(Name, "only this job's lines (an app of the same name is not matched)")),
        since: Type.Optional(Since),
        until: Type.Optional(Until),
        tail: Type.Optional(Tail),
        afterId: Type.Optional(AfterId),
      },
      strict,
    ),
    result: returns<LogsResult>(),
    answers: '`{lines: [{id, device, app, container, stream, ts, line, truncated?, suppressed?}]}`, oldest first',
    role: 'viewer',
    http: {
      method: 'GET',
      path: '/api/v1/devices/:device/logs',
      query: { app: 'text', job: 'text', since: 'text', until: 'text', tail: 'int', afterId: 'int' },
    },
  }),
  /** `?follow=true` on the same route streams (broker/telemetry/follow.ts), so it is no param. */
  'events.query': declareMethod({
    summary: `Events of every device, or of one, oldest first. ${QUERY_LIMITS} Over HTTP, \`follow\` streams them ([http.md](http.md#following-logs-and-events)).`,
    params: Type.Object(
      {
        device: Type.Optional(DeviceId),
        app: Type.Optional(described(Name, "only this app's events (a job's of the same name are not matched)")),
        job: Type.Optional(
          described(Name, "only this job's events, those whose type starts `job-` (an app's of the same name are not matched)"),
        ),
        since: Type.Optional(Since),
        until: Type.Optional(Until),
        tail: Type.Optional(Tail),
        afterId: Type.Optional(AfterId),
      },
      strict,
    ),
    result: returns<EventsResult>(),
    answers:
      '`{events: [{id, device, seq, ts, type, app?, container?, message}]}`, oldest first; `seq` is negative for an event the hub recorded itself (`device-id-clash`)',
    role: 'viewer',
    http: {
      method: 'GET',
      path: '/api/v1/events',
      query: { device: 'text', app: 'text', job: 'text', since: 'text', until: 'text', tail: 'int', afterId: 'int' },
    },
  }),
  'metrics.query': declareMethod({
    summary: "A device's metric samples, oldest first. Without `since` or `tail`, the last hour; one query returns at most 10,000.",
    params: Type.Object({ device: DeviceId, since: Type.Optional(Since), tail: Type.Optional(Tail) }, strict),
    result: returns<MetricsResult>(),
    answers: '`{device, samples: [{device, seq, ts, host, containers, agent?}]}`',
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/devices/:device/metrics', query: { since: 'text', tail: 'int' } },
  }),
  'devices.top': declareMethod({
    summary: "Each device's newest metric sample, its disk being the `root` one.",
    params: NoParams,
    result: returns<TopResult>(),
    answers:
      "`{devices: [{id, online, ts?, cpuPercent?, load1?, memUsedBytes?, memTotalBytes?, diskUsedBytes?, diskTotalBytes?, temperatureC?, containers?, linkBytesIn?, linkBytesOut?, linkBytesSince?}]}`: `linkBytes*` are MQTT bytes on the device's connections since the hub started (`linkBytesSince`)",
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/top' },
  }),
  'tokens.create': declareMethod({
    summary: 'A registration token, which a device trades for its credentials (`POST /api/v1/register`, [http.md](http.md)).',
    params: Type.Object(
      {
        labels: Type.Optional(CloneType(Labels, { description: 'labels each device registered with it gets, over any it asks for' })),
        maxUses: Type.Optional(
          Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'how many devices may register with it; default 1' }),
        ),
        expiresInSeconds: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: MAX_TOKEN_EXPIRES_SECONDS,
            description: 'how long it stays valid; default 24 h, at most 10 years',
          }),
        ),
      },
      strict,
    ),
    result: returns<TokenCreated>(),
    answers: '`{id, token, labels, maxUses, expiresAt}`; the token is shown only here',
    role: 'admin',
    http: { method: 'POST', path: '/api/v1/tokens', body: 'optional-object' },
  }),
  'tokens.list': declareMethod({
    summary: 'Every registration token, never the token itself.',
    params: NoParams,
    result: returns<List<TokenInfo>>(),
    answers: '`{items: [{id, labels, maxUses, uses, expiresAt, revoked, createdAt}]}`',
    role: 'admin',
    http: { method: 'GET', path: '/api/v1/tokens' },
  }),
  'tokens.revoke': declareMethod({
    summary: 'No device may register with the token from then on.',
    params: ByTokenId,
    result: returns<TokenRevoked>(),
    answers: '`{id, revoked: true}`',
    role: 'admin',
    http: { method: 'DELETE', path: '/api/v1/tokens/:id' },
  }),
  'devices.revoke': declareMethod({
    summary: "The device's secret is refused from then on, and its connection is closed.",
    params: ByDeviceId,
    result: returns<DeviceRevoked>(),
    answers: '`{id, revoked: true, disconnected}`',
    role: 'admin',
    http: { method: 'POST', path: '/api/v1/devices/:id/revoke' },
  }),
  'serviceaccounts.create': declareMethod({
    summary:
      "An account for a backend service or a person: its name is its MQTT username, its API key its MQTT password and its HTTP bearer token. A name that is taken, or that would clash with a device's client id, is `conflict`.",
    params: Type.Object(
      {
        name: Name,
        role: Type.Union(
          API_ROLES.map((r) => Type.Literal(r)),
          { description: "what it may call: each method's role, or a lower one" },
        ),
      },
      strict,
    ),
    result: returns<ServiceAccountCreated>(),
    answers: '`{name, role, key}`: the API key, shown only here',
    role: 'admin',
    http: { method: 'POST', path: '/api/v1/serviceaccounts', body: 'object' },
  }),
  'serviceaccounts.list': declareMethod({
    summary: 'Every service account, never its key.',
    params: NoParams,
    result: returns<List<ServiceAccountInfo>>(),
    answers: '`{items: [{name, role, createdAt}]}`',
    role: 'admin',
    http: { method: 'GET', path: '/api/v1/serviceaccounts' },
  }),
  'serviceaccounts.delete': declareMethod({
    summary: 'Deletes a service account and closes its connections at once; the last admin cannot be deleted.',
    params: ByName,
    result: returns<Deleted>(),
    answers: '`{name, deleted: true}`',
    role: 'admin',
    http: { method: 'DELETE', path: '/api/v1/serviceaccounts/:name' },
  }),
  'audit.list': declareMethod({
    summary:
      'Remote-access sessions (exec, shell, port-forward) and refused attempts, newest first: who, which device, what, when, bytes each way, and how it ended.',
    params: Type.Object(
      {
        device: Type.Optional(DeviceId),
        since: Type.Optional(Since),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'at most this many records (default 100)' })),
      },
      strict,
    ),
    result: returns<List<AuditRecord>>(),
    answers:
      '`{items: [{id, actor, device, kind, what, outcome, startedAt, endedAt?, bytesUp, bytesDown, exitCode?, reason?}]}`, newest first',
    role: 'admin',
    http: { method: 'GET', path: '/api/v1/audit', query: { device: 'text', since: 'text', limit: 'int' } },
  }),
  'agent.upgrade': declareMethod({
    summary:
      'Sets the agent release the devices a target selects must run, as a new revision of the target (made if missing). The hub must hold the release (`--releases-dir`) for at least one architecture, or be given an image by digest; an unknown version is `invalid_request`, naming what the hub has. With `rollout`, devices move through a canary and batches (`agent.rollout.status`); without, all at once.',
    params: Type.Object(
      {
        name: Type.Optional(
          CloneType(Name, { description: 'the target; default: made from the selection (`all`, `site-lab`, `device-gw-1`)' }),
        ),
        selectors: Type.Optional(CloneType(Labels, { description: 'labels a device must have; `{}` selects every device' })),
        devices: Type.Optional(Type.Array(DeviceId, { uniqueItems: true, description: 'device ids, instead of or as well as selectors' })),
        version: AgentVersion,
        image: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 512,
            description: 'the agent image by digest (`repo@sha256:…`), for agents that run as a container',
          }),
        ),
        rollout: Type.Optional(RolloutPolicy),
        healthTimeout: Type.Optional(
          CloneType(Duration, { description: 'how long a new version has to report healthy before the device rolls it back (default 5m)' }),
        ),
        retry: Type.Optional(
          Type.Boolean({ description: 'a new revision even when nothing changed: devices where this version rolled back try it again' }),
        ),
      },
      strict,
    ),
    result: returns<AgentUpgradeResult>(),
    answers:
      '`{name, revision, version, changed, rollout?}`; the same settings again are `changed: false` and no new revision (unless `retry`)',
    role: 'operator',
    http: { method: 'POST', path: '/api/v1/agent/targets', body: 'object' },
  }),
  'agent.targets': declareMethod({
    summary: 'Every agent target, with how many of the devices it selects run its version, are upgrading, failed or rolled back.',
    params: NoParams,
    result: returns<List<AgentTargetView>>(),
    answers:
      '`{items: [{name, revision, version, scheduling, arches, image?, rollout?, healthTimeout?, devices: {matched, running, upgrading, failed, rolledBack}, createdAt, updatedAt}]}`',
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/agent/targets' },
  }),
  'agent.delete': declareMethod({
    summary: 'Deletes an agent target: the devices it selected keep the agent they run (or follow another target that selects them).',
    params: ByName,
    result: returns<Deleted>(),
    answers: '`{name, deleted: true}`',
    role: 'operator',
    http: { method: 'DELETE', path: '/api/v1/agent/targets/:name' },
  }),
  'agent.rollout.status': declareMethod({
    summary: "The agent target's newest rollout (`flotilla rollout status agent/NAME`); a target without one is `not_found`.",
    params: ByName,
    result: returns<RolloutStatus>(),
    answers: "the [rollout](#rollout), its `app` being `agent/<name>` and its revisions the target's",
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/agent/targets/:name/rollout' },
  }),
  'agent.rollout.pause': declareMethod({
    summary: "Starts no more devices on the target's new version.",
    params: ByName,
    result: returns<RolloutStatus>(),
    answers: 'the rollout, as `agent.rollout.status` answers it',
    role: 'operator',
    http: { method: 'POST', path: '/api/v1/agent/targets/:name/rollout/pause' },
  }),
  'agent.rollout.resume': declareMethod({
    summary: 'Goes on with the next devices.',
    params: ByName,
    result: returns<RolloutStatus>(),
    answers: 'the rollout, as `agent.rollout.status` answers it',
    role: 'operator',
    http: { method: 'POST', path: '/api/v1/agent/targets/:name/rollout/resume' },
  }),
  'agent.rollout.abort': declareMethod({
    summary: 'Every device back on the agent version it was told to run before the rollout.',
    params: ByName,
    result: returns<RolloutStatus>(),
    answers: 'the rollout, as `agent.rollout.status` answers it',
    role: 'operator',
    http: { method: 'POST', path: '/api/v1/agent/targets/:name/rollout/abort' },
  }),
  'jobs.create': declareMethod({
    summary:
      "Makes a job: one execution per device its scheduling selects now, online or not, each delivered through the device's desired state (so an offline device runs it when it reconnects, until the deadline). A name in use is `conflict`; an invalid spec is `invalid_request` naming every field, and nothing is made.",
    params: Type.Object({ spec: Type.Unknown({ description: 'the [job spec](../jobs.md)' }) }, strict),
    result: returns<JobDetail>(),
    answers: 'the [job](#job) as made, every execution `queued`',
    role: 'operator',
    http: { method: 'POST', path: '/api/v1/jobs', body: { param: 'spec' } },
  }),
  'jobs.list': declareMethod({
    summary: 'Every job, newest first, with its counts per state.',
    params: NoParams,
    result: returns<List<JobSummary>>(),
    answers: '`{items: [{name, phase, counts, devices, createdAt, deadline, reason?}]}`',
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/jobs' },
  }),
  'jobs.get': declareMethod({
    summary: "One job: its spec, counts per state, and every device's execution.",
    params: ByName,
    result: returns<JobDetail>(),
    answers: 'the [job](#job)',
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/jobs/:name' },
  }),
  'jobs.cancel': declareMethod({
    summary:
      'Cancels a job: queued executions are dropped at once (`canceled`), running ones are stopped on their devices, which then report `canceled`. Final executions keep their state. Canceling a finished job changes nothing.',
    params: ByName,
    result: returns<JobDetail>(),
    answers: 'the [job](#job), its phase `canceled`',
    role: 'operator',
    http: { method: 'POST', path: '/api/v1/jobs/:name/cancel' },
  }),
  'jobs.delete': declareMethod({
    summary: "Deletes a job and its executions' records (cancels it first). Its logs and events stay, as any device's do.",
    params: ByName,
    result: returns<Deleted>(),
    answers: '`{name, deleted: true}`',
    role: 'operator',
    http: { method: 'DELETE', path: '/api/v1/jobs/:name' },
  }),
  'hub.version': declareMethod({
    summary: "The hub's Flotilla version, and the protocol versions it speaks with agents (an agent stating another is refused).",
    params: NoParams,
    result: returns<HubVersion>(),
    answers: '`{version, protocolVersions}`',
    role: 'viewer',
    http: { method: 'GET', path: '/api/v1/version' },
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
