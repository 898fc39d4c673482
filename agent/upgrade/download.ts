/**
 * Fetches a release tarball into its `.part` file, resuming: with `from` > 0
 * it asks `Range: bytes=<from>-` and writes a 206 answer that starts there at
 * that offset;
 * a 200 answer (a server that ignores ranges) starts the file over; a 416
 * means the server has no byte past `from`, which the caller's size check
 * then judges. The body is streamed to disk (never held in memory), so a
 * tarball of tens of MB costs the agent a few 64 KiB chunks, and the event
 * loop only ever sees one chunk at a time.
 *
 * node:http rather than fetch for the reason agent/http-get.ts gives (undici's
 * memory); `ca` pins the hub's CA for https as the MQTT link does.
 */
import { createWriteStream, mkdirSync, truncateSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export class DownloadError extends Error {
  override readonly name = 'DownloadError';
}

export interface DownloadOptions {
  url: URL;
  part: string;
  /** Bytes of `part` already on disk, kept if the server resumes there. */
  from: number;
  /** The whole file's size: more than this is refused. */
  total: number;
  ca?: string;
  signal: AbortSignal;
  /** Bytes in `part` so far, after each chunk. */
  onProgress?: (bytes: number) => void;
}

export interface DownloadResult {
  /** Bytes in `part` now. */
  bytes: number;
  /** Bytes this call received over the network. */
  received: number;
  /** The server answered the range (false: it sent the whole file, or nothing past `from`). */
  resumed: boolean;
}

export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const { url, part, from, total, signal } = options;
  mkdirSync(dirname(part), { recursive: true });
  const res = await get(url, from > 0 ? { range: `bytes=${from}-` } : {}, options.ca, signal);
  const status = res.statusCode ?? 0;
  if (status === 416) {
    res.resume();
    return { bytes: from, received: 0, resumed: false };
  }
  const resumed = status === 206 && rangeStartOf(res.headers['content-range']) === from;
  if (status !== 200 && !resumed) {
    res.resume();
    throw new DownloadError(`GET ${url.href} answered ${status} ${res.statusMessage ?? ''}`.trim());
  }
  let bytes = resumed ? from : 0;
  let received = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      received += chunk.length;
      if (bytes > total) return done(new DownloadError(`GET ${url.href} sent more than the release's ${total} bytes`));
      options.onProgress?.(bytes);
      done(null, chunk);
    },
  });
  // A resumed file is cut to `from` and written at that offset: whatever a previous writer
  // left past it (a chunk still being flushed when its connection died) cannot shift the rest.
  if (resumed) truncateSync(part, from);
  const out = resumed ? createWriteStream(part, { flags: 'r+', start: from }) : createWriteStream(part, { flags: 'w' });
  try {
    await pipeline(res, count, out, { signal });
  } catch (err) {
    // The file is closed before the caller measures it to resume: no write of this one lands later.
    if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
    if (signal.aborted) throw err;
    if (err instanceof DownloadError) throw err;
    throw new DownloadError(`downloading ${url.href} stopped after ${bytes} of ${total} bytes: ${(err as Error).message}`);
  }
  // A connection cut between chunks can end the body without an error: the size tells.
  if (bytes < total) throw new DownloadError(`the connection to ${url.host} closed after ${bytes} of ${total} bytes`);
  return { bytes, received, resumed };
}

function get(url: URL, headers: Record<string, string>, ca: string | undefined, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
    if (request === undefined) return reject(new DownloadError(`cannot download ${url.href}: only http and https are supported`));
    const req = request(
      url,
      { method: 'GET', headers, agent: false, signal, ...(ca !== undefined && url.protocol === 'https:' ? { ca } : {}) },
      resolve,
    );
    req.once('error', (err) => reject(signal.aborted ? err : new DownloadError(`cannot download ${url.href}: ${(err as Error).message}`)));
    req.end();
  });
}

function rangeStartOf(header: string | undefined): number | undefined {
  const match = header === undefined ? null : /^bytes ([0-9]+)-/.exec(header);
  return match ? Number(match[1]) : undefined;
}
