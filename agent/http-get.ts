/**
 * HTTP GET over node:http and node:https, for the agent's health probes and
 * its registry reads, instead of the global `fetch`.
 *
 * Why not `fetch`: Node's fetch is undici, which parses HTTP with a
 * WebAssembly module and costs the agent a few MiB of RSS once loaded
 * (BENCHMARKS.md, "Footprint"); the agent's few GETs need none of it.
 *
 * The answer is a small subset of a fetch `Response` (status, ok, headers),
 * read whole with a byte limit (as text or bytes), streamed, or discarded. Redirects are followed for
 * `redirect: 'follow'` (at most 5, GET, Authorization dropped when the host
 * changes, as fetch does) and returned as they are for `'manual'`.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';

export interface GetOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  redirect?: 'follow' | 'manual';
}

export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

export interface HttpAnswer {
  status: number;
  statusText: string;
  ok: boolean;
  header(name: string): string | undefined;
  /** The body as UTF-8; BodyTooLarge past `limit` bytes (declared or received). */
  text(limit: number): Promise<string>;
  /** The body's bytes as received (for a digest over them); BodyTooLarge past `limit` bytes. */
  bytes(limit: number): Promise<Buffer>;
  /**
   * The body as it arrives, for a caller that reads a large one chunk by chunk: reading slowly
   * holds the sender back through TCP. The stream errors when the connection breaks before the
   * declared length, or when the request's signal aborts. Read it, or discard the answer.
   */
  stream(): Readable;
  /** Frees the connection without reading the body. */
  discard(): void;
}

export type HttpGet = (url: string | URL, options?: GetOptions) => Promise<HttpAnswer>;

const MAX_REDIRECTS = 5;

export const httpGet: HttpGet = async (url, options = {}) => {
  let target = new URL(url);
  let headers = { ...options.headers };
  for (let hops = 0; ; hops++) {
    const res = await getOnce(target, headers, options.signal);
    const location = res.headers.location;
    const status = res.statusCode ?? 0;
    if (options.redirect === 'manual' || status < 300 || status >= 400 || location === undefined || hops >= MAX_REDIRECTS) {
      return answer(res);
    }
    res.resume();
    const next = new URL(location, target);
    if (next.host !== target.host) {
      const { authorization: _dropped, ...rest } = headers;
      headers = rest;
    }
    target = next;
  }
};

function getOnce(url: URL, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
    if (request === undefined) {
      reject(new Error(`unsupported URL scheme ${url.protocol}`));
      return;
    }
    // A connection per request (agent: false): a probe must see the container as it is now, not
    // through a pooled socket to a process that has since gone; the registry is read a few times per pull.
    const req = request(url, { method: 'GET', headers, agent: false, ...(signal ? { signal } : {}) }, resolve);
    req.once('error', reject);
    req.end();
  });
}

function answer(res: IncomingMessage): HttpAnswer {
  const status = res.statusCode ?? 0;
  return {
    status,
    statusText: res.statusMessage ?? '',
    ok: status >= 200 && status < 300,
    header: (name) => {
      const value = res.headers[name.toLowerCase()];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    text: async (limit) => (await readBounded(res, limit)).toString('utf8'),
    bytes: (limit) => readBounded(res, limit),
    stream: () => res,
    discard: () => {
      res.destroy();
    },
  };
}

function readBounded(res: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Settled once: destroying the response makes it emit more events.
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
      res.destroy();
    };
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      fail(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let length = 0;
    res.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) fail(new BodyTooLarge());
      else chunks.push(chunk);
    });
    res.once('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks));
    });
    res.once('error', fail);
    res.once('aborted', () => fail(new Error('the connection closed before the whole answer arrived')));
  });
}
