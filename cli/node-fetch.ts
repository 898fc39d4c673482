/**
 * A `fetch` over `node:http` and `node:https`, for the CLI's calls to the hub.
 *
 * Node's global fetch (undici) is the slow part of a short command: loading
 * it and its WebAssembly HTTP parser costs ~30 ms, and its pooled connection
 * then holds the process open for another ~70 ms after the answer (measured
 * with Node 20: `flotilla get devices` 0.24 s through it, see BENCHMARKS.md).
 * Node's own client has neither cost: its idle keep-alive sockets do not
 * keep the process alive.
 *
 * Only what HubClient uses is supported: method, headers, a string body and
 * an abort signal; the answer is a web `Response` with its body streamed
 * (follow streams keep working). A redirect, which undici would follow, is
 * handed to `redirects` (the global fetch) to follow the same way.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

/** Statuses whose Response must have a null body (the constructor throws otherwise). */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface NodeFetchOptions {
  /** Trust only this CA (PEM) for https, instead of the system's store. */
  ca?: string;
  /** Where a redirect goes to be followed; without it the 3xx answer is returned as it is. */
  redirects?: typeof fetch;
}

export function nodeFetch(options: NodeFetchOptions = {}): typeof fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return Promise.reject(new TypeError(`fetch: unsupported protocol ${url.protocol}`));
    }
    const method = init?.method ?? 'GET';
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== 'string') {
      return Promise.reject(new TypeError('fetch: only string bodies are supported'));
    }
    const signal = init?.signal ?? undefined;
    return new Promise<Response>((resolve, reject) => {
      const onResponse = (res: import('node:http').IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (options.redirects && REDIRECT_STATUSES.has(status) && res.headers.location !== undefined) {
          res.resume();
          resolve(options.redirects(input, init));
          return;
        }
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          for (const item of Array.isArray(value) ? value : [value]) responseHeaders.append(name, item);
        }
        const nullBody = NULL_BODY_STATUSES.has(status) || method === 'HEAD';
        if (nullBody) res.resume();
        resolve(
          new Response(nullBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
            status,
            statusText: res.statusMessage ?? '',
            headers: responseHeaders,
          }),
        );
      };
      const common = { method, headers, ...(signal ? { signal } : {}) };
      // rejectUnauthorized is the default; said here because it is the point of `ca`.
      const req =
        url.protocol === 'https:'
          ? httpsRequest(url, { ...common, ...(options.ca !== undefined ? { ca: options.ca } : {}), rejectUnauthorized: true }, onResponse)
          : httpRequest(url, common, onResponse);
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  };
}
