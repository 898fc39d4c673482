/**
 * The HTTP API: a thin mapping of REST routes onto the same method table the
 * MQTT request API uses, so both answer identically.
 *
 *   GET    /healthz
 *   GET    /api/v1/apps                  apps.list
 *   POST   /api/v1/apps                  apps.apply   (body: the spec, JSON or YAML)
 *   GET    /api/v1/apps/:name            apps.get
 *   DELETE /api/v1/apps/:name            apps.delete
 *   GET    /api/v1/apps/:name/revisions  apps.history
 *   POST   /api/v1/apps/:name/rollback   apps.rollback (body: {toRevision?}, or none for the previous revision)
 *   POST   /api/v1/apps/:name/force      apps.force   (swap even where the app holds its update lock)
 *   POST   /api/v1/apps/:name/retry      apps.retry   (the same spec as a new revision: devices try it again)
 *   GET    /api/v1/apps/:name/rollout    rollouts.status
 *   POST   /api/v1/apps/:name/rollout/{pause,resume,abort}  rollouts.pause / resume / abort
 *   GET    /api/v1/devices               devices.list
 *   GET    /api/v1/devices/:id           devices.get
 *   PATCH  /api/v1/devices/:id/labels    devices.label (body: {set, remove})
 *   GET    /api/v1/secrets               secrets.list
 *   PUT    /api/v1/secrets/:name         secrets.set  (body: {value})
 *   DELETE /api/v1/secrets/:name         secrets.delete
 *   GET    /api/v1/devices/:id/logs      logs.query    (?app=&since=&tail=&afterId=; &follow=true streams, see telemetry/follow.ts)
 *   GET    /api/v1/events                events.query  (?device=&app=&since=&tail=&afterId=; &follow=true streams)
 *   GET    /api/v1/devices/:id/metrics   metrics.query (?since=&tail=)
 *   GET    /api/v1/top                   devices.top
 *   GET    /api/v1/hub/key               the hub's signing public key {hubKey}, unauthenticated (http/hub-key.ts)
 *   POST   /api/v1/tokens                tokens.create (body: {labels?, maxUses?, expiresInSeconds?})
 *   GET    /api/v1/tokens                tokens.list
 *   DELETE /api/v1/tokens/:id            tokens.revoke
 *   POST   /api/v1/devices/:id/revoke    devices.revoke
 *   POST   /api/v1/serviceaccounts       serviceaccounts.create (body: {name, role})
 *   GET    /api/v1/serviceaccounts       serviceaccounts.list
 *   DELETE /api/v1/serviceaccounts/:name serviceaccounts.delete
 *   POST   /api/v1/register              a device trades a registration token for its secret (broker/auth/register.ts)
 *
 * With credentials required (hub auth), every route but /healthz, the
 * register route and public raw routes takes `Authorization: Bearer <key>`,
 * and the role the method needs (broker/auth/permissions.ts).
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { type HttpAuth, requireCall, requireRole } from '../auth/http-auth.js';
import type { Role } from '../auth/identity.js';
import type { HubApi } from '../dispatcher/api.js';
import { ApiError, type ApiErrorCode, HTTP_STATUS, toErrorBody } from '../dispatcher/errors.js';

const MAX_BODY_BYTES = 1024 * 1024;

interface Route {
  method: string;
  pattern: RegExp;
  call: string;
  params: (match: RegExpMatchArray, body: Body, query: URLSearchParams) => Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** Reads and parses the request body; an empty body is an error unless `optional`, when it reads as undefined. */
type Body = (optional?: 'optional') => Promise<unknown>;

const ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/api\/v1\/apps$/, call: 'apps.list', params: () => ({}) },
  { method: 'POST', pattern: /^\/api\/v1\/apps$/, call: 'apps.apply', params: async (_m, body) => ({ spec: await body() }) },
  { method: 'GET', pattern: /^\/api\/v1\/apps\/([^/]+)$/, call: 'apps.get', params: (m) => ({ name: m[1] }) },
  { method: 'DELETE', pattern: /^\/api\/v1\/apps\/([^/]+)$/, call: 'apps.delete', params: (m) => ({ name: m[1] }) },
  { method: 'GET', pattern: /^\/api\/v1\/apps\/([^/]+)\/revisions$/, call: 'apps.history', params: (m) => ({ name: m[1] }) },
  {
    method: 'POST',
    pattern: /^\/api\/v1\/apps\/([^/]+)\/rollback$/,
    call: 'apps.rollback',
    // `curl -X POST …/rollback` with no body at all rolls back to the previous revision.
    params: async (m, body) => ({ ...(await bodyObject(body, 'optional')), name: m[1] }),
  },
  { method: 'POST', pattern: /^\/api\/v1\/apps\/([^/]+)\/force$/, call: 'apps.force', params: (m) => ({ name: m[1] }) },
  { method: 'POST', pattern: /^\/api\/v1\/apps\/([^/]+)\/retry$/, call: 'apps.retry', params: (m) => ({ name: m[1] }) },
  { method: 'GET', pattern: /^\/api\/v1\/apps\/([^/]+)\/rollout$/, call: 'rollouts.status', params: (m) => ({ name: m[1] }) },
  ...(['pause', 'resume', 'abort'] as const).map(
    (action): Route => ({
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/([^/]+)/rollout/${action}$`),
      call: `rollouts.${action}`,
      params: (m) => ({ name: m[1] }),
    }),
  ),
  { method: 'GET', pattern: /^\/api\/v1\/devices$/, call: 'devices.list', params: () => ({}) },
  { method: 'GET', pattern: /^\/api\/v1\/devices\/([^/]+)$/, call: 'devices.get', params: (m) => ({ id: m[1] }) },
  {
    method: 'PATCH',
    pattern: /^\/api\/v1\/devices\/([^/]+)\/labels$/,
    call: 'devices.label',
    params: async (m, body) => ({ ...(await bodyObject(body)), id: m[1] }),
  },
  { method: 'GET', pattern: /^\/api\/v1\/secrets$/, call: 'secrets.list', params: () => ({}) },
  {
    method: 'PUT',
    pattern: /^\/api\/v1\/secrets\/([^/]+)$/,
    call: 'secrets.set',
    params: async (m, body) => ({ ...(await bodyObject(body)), name: m[1] }),
  },
  { method: 'DELETE', pattern: /^\/api\/v1\/secrets\/([^/]+)$/, call: 'secrets.delete', params: (m) => ({ name: m[1] }) },
  {
    method: 'GET',
    pattern: /^\/api\/v1\/devices\/([^/]+)\/logs$/,
    call: 'logs.query',
    params: (m, _b, q) => ({ ...queryParams(q, { app: 'text', since: 'text', tail: 'int', afterId: 'int' }), device: m[1] }),
  },
  {
    method: 'GET',
    pattern: /^\/api\/v1\/events$/,
    call: 'events.query',
    params: (_m, _b, q) => queryParams(q, { device: 'text', app: 'text', since: 'text', tail: 'int', afterId: 'int' }),
  },
  {
    method: 'GET',
    pattern: /^\/api\/v1\/devices\/([^/]+)\/metrics$/,
    call: 'metrics.query',
    params: (m, _b, q) => ({ ...queryParams(q, { since: 'text', tail: 'int' }), device: m[1] }),
  },
  { method: 'GET', pattern: /^\/api\/v1\/top$/, call: 'devices.top', params: () => ({}) },
  // Who may connect (admin only; broker/auth/methods.ts). POST /api/v1/register is a raw route (broker/auth/register.ts).
  { method: 'POST', pattern: /^\/api\/v1\/tokens$/, call: 'tokens.create', params: (_m, body) => bodyObject(body, 'optional') },
  { method: 'GET', pattern: /^\/api\/v1\/tokens$/, call: 'tokens.list', params: () => ({}) },
  { method: 'DELETE', pattern: /^\/api\/v1\/tokens\/([^/]+)$/, call: 'tokens.revoke', params: (m) => ({ id: m[1] }) },
  { method: 'POST', pattern: /^\/api\/v1\/devices\/([^/]+)\/revoke$/, call: 'devices.revoke', params: (m) => ({ id: m[1] }) },
  { method: 'POST', pattern: /^\/api\/v1\/serviceaccounts$/, call: 'serviceaccounts.create', params: (_m, body) => bodyObject(body) },
  { method: 'GET', pattern: /^\/api\/v1\/serviceaccounts$/, call: 'serviceaccounts.list', params: () => ({}) },
  {
    method: 'DELETE',
    pattern: /^\/api\/v1\/serviceaccounts\/([^/]+)$/,
    call: 'serviceaccounts.delete',
    params: (m) => ({ name: m[1] }),
  },
];

/**
 * The named query-string parameters, typed: an `int` that is not a
 * non-negative integer is the caller's mistake, reported as such.
 */
export function queryParams(query: URLSearchParams, spec: Record<string, 'text' | 'int'>): Record<string, string | number> {
  const params: Record<string, string | number> = {};
  for (const [name, kind] of Object.entries(spec)) {
    const value = query.get(name);
    if (value === null) continue;
    if (kind === 'text') params[name] = value;
    else if (/^\d{1,15}$/.test(value)) params[name] = Number(value);
    else throw new ApiError('invalid_request', `query parameter ${name} must be a non-negative integer, got "${value}"`);
  }
  return params;
}

/**
 * A route that writes its own response: streams (Server-Sent Events), the
 * Prometheus text format, static files. Tried before the method-table routes.
 */
export interface RawRoute {
  method: string;
  pattern: RegExp;
  /** Takes the request only when this says so (e.g. `?follow=true`); otherwise the method table does. */
  accepts?: (url: URL) => boolean;
  /** Served to anyone, even where the API requires a bearer token (the hub's public key, GET /api/v1/hub/key). */
  public?: boolean;
  /** The role a caller needs when the hub requires credentials (HTTP auth); admin when not said. */
  role?: Role;
  handle(req: IncomingMessage, res: ServerResponse, match: RegExpMatchArray, url: URL): Promise<void> | void;
}

/** Without `auth` every caller may call everything (a hub that predates credentials; unit tests). */
export function createHttpApi(api: HubApi, logger: Logger, rawRoutes: readonly RawRoute[] = [], auth?: HttpAuth): Server {
  return createServer(createHttpHandler(api, logger, rawRoutes, auth));
}

/** The API's request listener alone, so the HTTP and the HTTPS server (broker/tls/listeners.ts) answer alike. */
export function createHttpHandler(api: HubApi, logger: Logger, rawRoutes: readonly RawRoute[] = [], auth?: HttpAuth): RequestListener {
  const log = logger.child({ component: 'http' });
  return (req, res) => {
    handle(api, rawRoutes, req, res, auth).catch((err: unknown) => {
      const error = toErrorBody(err);
      if (error.code === 'internal') log.error({ err, method: req.method, url: req.url }, 'HTTP request failed');
      // A stream that fails midway cannot change its status line any more.
      if (res.headersSent) return void res.destroy();
      if (error.code === 'unauthorized') res.setHeader('www-authenticate', 'Bearer realm="flotilla"');
      send(res, HTTP_STATUS[error.code as ApiErrorCode] ?? 500, { error });
    });
  };
}

async function handle(
  api: HubApi,
  rawRoutes: readonly RawRoute[],
  req: IncomingMessage,
  res: ServerResponse,
  auth?: HttpAuth,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://hub');
  const path = url.pathname;
  if (path === '/healthz' && req.method === 'GET') return send(res, 200, { ok: true });
  for (const raw of rawRoutes) {
    const match = raw.method === req.method ? path.match(raw.pattern) : null;
    if (!match || !(raw.accepts?.(url) ?? true)) continue;
    if (auth && !raw.public) requireRole(await auth.identify(req), raw.role ?? 'admin', `${req.method} ${path}`);
    return raw.handle(req, res, match.map(decodePathPart) as RegExpMatchArray, url);
  }
  const candidates = ROUTES.filter((route) => route.pattern.test(path));
  if (candidates.length === 0) throw new ApiError('not_found', `no route for ${path}`);
  const route = candidates.find((r) => r.method === req.method);
  if (!route) {
    res.setHeader('allow', candidates.map((r) => r.method).join(', '));
    return send(res, 405, { error: { code: 'method_not_allowed', message: `${req.method} is not allowed on ${path}` } });
  }
  if (auth) requireCall(await auth.identify(req), route.call);
  const match = path.match(route.pattern)!.map(decodePathPart) as RegExpMatchArray;
  const params = await route.params(match, (optional) => readBody(req, optional), url.searchParams);
  send(res, 200, api.call(route.call, params));
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ApiError('invalid_request', `malformed percent-escape in "${part}"`);
  }
}

async function bodyObject(body: Body, optional?: 'optional'): Promise<Record<string, unknown>> {
  const value = await body(optional);
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError('invalid_request', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/**
 * Reads and parses a request body (YAML when the content type says so, else
 * JSON), refusing one over `maxBytes` as soon as it grows past it. Raw routes
 * that take a body use it too (registration, with a smaller cap).
 */
export async function readBody(req: IncomingMessage, optional?: 'optional', maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new ApiError('invalid_request', `request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') {
    if (optional) return undefined;
    throw new ApiError('invalid_request', 'request body is empty');
  }
  const isYaml = /yaml/.test(req.headers['content-type'] ?? '');
  try {
    return isYaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new ApiError('invalid_request', `request body is not valid ${isYaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
