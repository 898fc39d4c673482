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
 * an abort signal; the answer has the part of a web `Response` HubClient
 * reads (status, statusText, ok, headers.get, text, json, and body as a web
 * stream, so follow streams keep working). It is not a `Response`, nor are
 * the request's headers read through `Headers`: in Node 20 touching any of
 * fetch's globals loads undici's JavaScript (~10 ms of every command). A
 * redirect, which undici would follow, is handed to `redirects` (the global
 * fetch) to follow the same way.
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
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
  return async (input, init) => {
    const url = new URL(typeof input === 'object' && 'url' in input ? input.url : String(input));
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`fetch: unsupported protocol ${url.protocol}`);
    const method = init?.method ?? 'GET';
    const headers = headerRecord(init?.headers);
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== 'string') throw new TypeError('fetch: only string bodies are supported');
    const signal = init?.signal ?? undefined;
    // node:https loads TLS (~5 ms): only for an https hub.
    const httpsRequest = url.protocol === 'https:' ? (await import('node:https')).request : undefined;
    return new Promise<Response>((resolve, reject) => {
      const onResponse = (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (options.redirects && REDIRECT_STATUSES.has(status) && res.headers.location !== undefined) {
          res.resume();
          resolve(options.redirects(input, init));
          return;
        }
        const nullBody = NULL_BODY_STATUSES.has(status) || method === 'HEAD';
        if (nullBody) res.resume();
        resolve(new NodeResponse(res, nullBody) as unknown as Response);
      };
      const common = { method, headers, ...(signal ? { signal } : {}) };
      // rejectUnauthorized is the default; said here because it is the point of `ca`.
      const req =
        httpsRequest !== undefined
          ? httpsRequest(url, { ...common, ...(options.ca !== undefined ? { ca: options.ca } : {}), rejectUnauthorized: true }, onResponse)
          : httpRequest(url, common, onResponse);
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  };
}

/** A request's headers as node:http takes them: names lower-cased, repeated names joined as `Headers` joins them. */
function headerRecord(init: RequestInit['headers']): Record<string, string> {
  const record: Record<string, string> = {};
  if (init === undefined) return record;
  // A Headers object and an array of pairs are iterable; a plain record is not.
  const pairs: Iterable<readonly [string, string]> =
    Symbol.iterator in init ? (init as Iterable<readonly [string, string]>) : Object.entries(init as Record<string, string>);
  for (const [name, value] of pairs) {
    const key = name.toLowerCase();
    record[key] = key in record ? `${record[key]}, ${value}` : value;
  }
  return record;
}

/** The answer's headers, read as `Headers.get` reads them. */
class NodeHeaders {
  constructor(private readonly headers: IncomingHttpHeaders) {}

  get(name: string): string | null {
    const value = this.headers[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }
}

/** The part of a web Response HubClient reads, over node:http's answer; the body becomes a web stream only when asked for. */
class NodeResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: NodeHeaders;
  private stream: ReadableStream<Uint8Array> | null | undefined;

  constructor(
    private readonly res: IncomingMessage,
    private readonly nullBody: boolean,
  ) {
    this.status = res.statusCode ?? 0;
    this.statusText = res.statusMessage ?? '';
    this.headers = new NodeHeaders(res.headers);
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.stream === undefined) this.stream = this.nullBody ? null : (Readable.toWeb(this.res) as ReadableStream<Uint8Array>);
    return this.stream;
  }

  async text(): Promise<string> {
    if (this.stream !== undefined) throw new TypeError('fetch: the body was already read as a stream');
    this.stream = null;
    if (this.nullBody) return '';
    const chunks: Buffer[] = [];
    for await (const chunk of this.res) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}
