/**
 * A `fetch` that trusts one CA (the fleet's own, `--ca FILE`) for https hubs
 * instead of the system's trust store: the certificate pinning the agent does
 * for mqtts, for the CLI's HTTP calls. Node's global fetch (undici) takes no
 * `ca` without a dispatcher we cannot import, so https goes through
 * `node:https` with `ca`, and the answer is wrapped as a web `Response`, body
 * streamed (follow streams keep working).
 *
 * Only what HubClient uses is supported: method, headers, a string body and
 * an abort signal. http:// URLs go to the base fetch unchanged.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { Readable } from 'node:stream';
import { UsageError } from './errors.js';

/** Statuses whose Response must have a null body (the constructor throws otherwise). */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

export function pinnedFetch(ca: string, base: typeof fetch = globalThis.fetch): typeof fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol !== 'https:') return base(input, init);
    const method = init?.method ?? 'GET';
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== 'string') {
      return Promise.reject(new TypeError('pinnedFetch: only string bodies are supported'));
    }
    const signal = init?.signal ?? undefined;
    return new Promise<Response>((resolve, reject) => {
      // rejectUnauthorized is the default; said here because it is the point.
      const req = request(url, { method, headers, ca, rejectUnauthorized: true, ...(signal ? { signal } : {}) }, (res) => {
        const status = res.statusCode ?? 0;
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
      });
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  };
}

/** The PEM text of `--ca FILE`, refused early (exit 2) when it is missing or holds no certificate. */
export function readCaFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the CA file ${path}: ${(err as Error).message}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new UsageError(`the CA file ${path} holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----")`);
  }
  return text;
}
