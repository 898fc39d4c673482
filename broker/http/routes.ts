/**
 * The HTTP API's method routes, read from the API declaration
 * (shared/api/methods.ts): each method's verb and path, and how a request's
 * path, query string and body become its params. Path params win over body
 * fields of the same name, so a body cannot redirect a request to another app.
 */
import { API, API_METHOD_NAMES, type ApiMethodName, type HttpRoute, type HttpVerb, type QueryKind } from '../../shared/index.js';
import { ApiError } from '../dispatcher/errors.js';

export interface MethodRoute {
  name: ApiMethodName;
  verb: HttpVerb;
  pattern: RegExp;
  http: HttpRoute;
  /** The param each capture group of `pattern` fills, in order. */
  pathParams: string[];
}

/** Reads and parses the request body; an empty body is an error unless `optional`, when it reads as undefined. */
export type Body = (optional?: 'optional') => Promise<unknown>;

/** `/api/v1/apps/:name/rollback` → `^/api/v1/apps/([^/]+)/rollback$`, capturing `name`. */
export function methodRoute(name: ApiMethodName): MethodRoute {
  const { http } = API[name];
  const pathParams: string[] = [];
  const source = http.path
    .split('/')
    .map((segment) => {
      if (!segment.startsWith(':')) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      pathParams.push(segment.slice(1));
      return '([^/]+)';
    })
    .join('/');
  return { name, verb: http.method, pattern: new RegExp(`^${source}$`), http, pathParams };
}

/** Every declared method's route, in declaration order. */
export const METHOD_ROUTES: readonly MethodRoute[] = API_METHOD_NAMES.map(methodRoute);

/** The path's params from a match of `route.pattern` (already percent-decoded). */
export function pathParams(route: MethodRoute, match: RegExpMatchArray): Record<string, string | undefined> {
  return Object.fromEntries(route.pathParams.map((param, i) => [param, match[i + 1]]));
}

/** A request's params, as the route declares them: body, then query string, then path. */
export async function requestParams(route: MethodRoute, match: RegExpMatchArray, body: Body, query: URLSearchParams): Promise<unknown> {
  const { http } = route;
  const fromBody =
    http.body === undefined
      ? {}
      : typeof http.body === 'object'
        ? { [http.body.param]: await body() }
        : await bodyObject(body, http.body === 'optional-object' ? 'optional' : undefined);
  const fromQuery = http.query ? queryParams(query, http.query) : {};
  return { ...fromBody, ...fromQuery, ...pathParams(route, match) };
}

/**
 * The named query-string parameters, typed: an `int` that is not a
 * non-negative integer is the caller's mistake, reported as such.
 */
export function queryParams(query: URLSearchParams, spec: Partial<Record<string, QueryKind>>): Record<string, string | number> {
  const params: Record<string, string | number> = {};
  for (const [name, kind] of Object.entries(spec)) {
    const value = query.get(name);
    if (value === null || kind === undefined) continue;
    if (kind === 'text') params[name] = value;
    else if (/^\d{1,15}$/.test(value)) params[name] = Number(value);
    else throw new ApiError('invalid_request', `query parameter ${name} must be a non-negative integer, got "${value}"`);
  }
  return params;
}

async function bodyObject(body: Body, optional?: 'optional'): Promise<Record<string, unknown>> {
  const value = await body(optional);
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError('invalid_request', 'request body must be a JSON object');
  }
  return { ...value };
}
