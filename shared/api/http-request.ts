/**
 * How a declared method's params become an HTTP request (shared/api/methods.ts
 * declares the routes): what the CLI and the web console both send.
 */
import type { HttpRoute } from './declare.js';

/**
 * Where a method's params go on its route: each `:name` path segment takes
 * the param `name`, a declared body param is the whole body, and the other
 * params are the query string (GET, DELETE) or the fields of a JSON body.
 */
export function routeRequest(http: HttpRoute, params: object): { path: string; query: Record<string, unknown>; body?: unknown } {
  const rest: Record<string, unknown> = { ...params };
  const path = http.path
    .split('/')
    .map((segment) => {
      if (!segment.startsWith(':')) return segment;
      const value = rest[segment.slice(1)];
      delete rest[segment.slice(1)];
      return encodeURIComponent(String(value));
    })
    .join('/');
  if (typeof http.body === 'object') return { path, query: {}, body: rest[http.body.param] };
  if (http.method === 'GET' || http.method === 'DELETE') return { path, query: rest };
  return { path, query: {}, body: rest };
}

/** `?a=1&b=x` from the defined values, or `''` when there are none. */
export function queryString(params: object): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) search.set(key, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
