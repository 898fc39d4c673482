/**
 * The HTTP API: the method routes read from the API declaration
 * (shared/api/methods.ts, table in routes.ts) onto the same method table the
 * MQTT request API uses, so both answer identically; and raw routes that write
 * their own responses (follow streams, metrics, the hub's key, registration).
 *
 *   GET    /healthz
 *   *      /api/v1/…                     each declared method at its route (PUT /api/v1/secrets/:name → secrets.set; all: docs/reference/http.md)
 *   GET    /api/v1/hub/key               the hub's signing public key {hubKey}, unauthenticated (http/hub-key.ts)
 *   POST   /api/v1/register              a device trades a registration token for its secret (broker/auth/register.ts)
 *   GET    /api/v1/whoami                the caller's name and role (http/whoami.ts)
 *   GET    /, /console/…                 the web console (http/console.ts)
 *
 * With credentials required (hub auth), every route but /healthz, the
 * register route and public raw routes takes `Authorization: Bearer <key>`,
 * and the role the method's declaration names (broker/auth/permissions.ts).
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { type ApiMethodName, MAX_APPLY_BYTES } from '../../shared/index.js';
import { type HttpAuth, requireCall, requireRole } from '../auth/http-auth.js';
import { ANONYMOUS, type Identity, type Role } from '../auth/identity.js';
import type { HubApi } from '../dispatcher/api.js';
import { ApiError, type ApiErrorCode, HTTP_STATUS, toErrorBody } from '../dispatcher/errors.js';
import { METHOD_ROUTES, requestParams } from './routes.js';

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Methods whose body may be larger than MAX_BODY_BYTES: `apps.applyAll` carries a whole folder of
 * specs (up to MAX_APPLY_SPECS). Every other route keeps the default, so a stranger's oversized
 * body is still cut off early.
 */
const BODY_LIMITS: Partial<Record<ApiMethodName, number>> = { 'apps.applyAll': MAX_APPLY_BYTES, 'apps.plan': MAX_APPLY_BYTES };

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
  /** `caller` is who the bearer key says called: anonymous on a public route (whose caller is not asked) and on a hub without HTTP auth. */
  handle(req: IncomingMessage, res: ServerResponse, match: RegExpMatchArray, url: URL, caller: Identity): Promise<void> | void;
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
    const caller = auth && !raw.public ? await auth.identify(req) : ANONYMOUS;
    requireRole(caller, raw.role ?? 'admin', `${req.method} ${path}`);
    return raw.handle(req, res, match.map(decodePathPart) as RegExpMatchArray, url, caller);
  }
  const candidates = METHOD_ROUTES.filter((route) => route.pattern.test(path));
  if (candidates.length === 0) throw new ApiError('not_found', `no route for ${path}`);
  const route = candidates.find((r) => r.verb === req.method);
  if (!route) {
    res.setHeader('allow', candidates.map((r) => r.verb).join(', '));
    return send(res, 405, { error: { code: 'method_not_allowed', message: `${req.method} is not allowed on ${path}` } });
  }
  const caller = auth ? await auth.identify(req) : ANONYMOUS;
  if (auth) requireCall(caller, route.name);
  const match = path.match(route.pattern)!.map(decodePathPart) as RegExpMatchArray;
  const maxBytes = BODY_LIMITS[route.name] ?? MAX_BODY_BYTES;
  const params = await requestParams(route, match, (optional) => readBody(req, optional, maxBytes), url.searchParams);
  send(res, 200, await api.call(route.name, params, { caller: callerName(caller) }));
}

/** Who called, as a record of the call names them: the account's name. */
function callerName(identity: Identity): string {
  if (identity.kind === 'account') return identity.name;
  return identity.kind === 'device' ? `device ${identity.deviceId}` : 'an anonymous caller';
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ApiError('invalid_request', `malformed percent-escape in "${part}"`);
  }
}

/**
 * Past a body's limit, how much more of it is read and thrown away before the refusal is sent. A
 * client is still writing when the hub answers: if the hub stopped reading, the connection would be
 * reset under the client's write, and most clients then report the reset, not the hub's answer.
 * Beyond this the client is not sent a readable refusal: the connection is cut.
 */
const DISCARD_PAST_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * Reads and parses a request body (YAML when the content type says so, else
 * JSON), refusing one over `maxBytes`: past it nothing more is kept, and the
 * rest is read and discarded (up to DISCARD_PAST_LIMIT_BYTES) so the client
 * reads the refusal. Raw routes that take a body use it too (registration,
 * with a smaller cap).
 */
export async function readBody(req: IncomingMessage, optional?: 'optional', maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes + DISCARD_PAST_LIMIT_BYTES) break;
    if (size <= maxBytes) chunks.push(chunk as Buffer);
  }
  if (size > maxBytes) throw new ApiError('invalid_request', `request body is larger than ${maxBytes} bytes`);
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
