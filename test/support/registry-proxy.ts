/**
 * An HTTP proxy on 127.0.0.1 in front of a registry, that breaks blob
 * downloads on command: cut the connection every N bytes of a blob body,
 * stall once at an offset (stop sending, keep the socket open), ignore
 * Range, or change a byte of one blob's body for its first K deliveries. It
 * counts the blob body bytes it sends, in total and per digest, and records
 * each delivery (where it started, how much went, how it ended), so a test
 * can check that a download resumed instead of starting over.
 *
 * Every other request (manifests, /v2/, uploads, HEADs) passes through
 * untouched, so the proxy can also be the registry host of an image
 * reference (`127.0.0.1:<port>/repo:tag`) for the agent or the engine.
 *
 * Invariants: faults apply to blob GETs answered 200/206 only; a cut flushes
 * what was written before it closes (the client gets exactly N bytes, then
 * an early end); every socket is gone once close() resolves.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TEST_REGISTRY_HOST } from './registry-push.js';

export interface BlobDelivery {
  digest: string;
  /** The upstream status: 200 (whole) or 206 (from `start`). */
  status: number;
  /** The Range the client asked for (before ignoreRange stripped it), if any. */
  range: string | undefined;
  /** Whether the request carried an Authorization header. */
  authorized: boolean;
  /** Where in the blob this body started. */
  start: number;
  /** Body bytes the proxy wrote to the client. */
  sent: number;
  /** How it ended so far: still going, complete, cut by the proxy, stalled by the proxy, or closed by the client. */
  end: 'open' | 'complete' | 'cut' | 'stalled' | 'client-closed';
  corrupted: boolean;
}

export interface RegistryProxy {
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  /** `image` (named through the upstream registry) named through the proxy instead. */
  via(image: string): string;
  /** Cut each blob body after `bytes` more were sent (undefined: never). */
  cutEvery(bytes: number | undefined): void;
  /** The next blob body (of `digest`, if given) that reaches byte `offset` of its blob stops there, its socket left open. Once. */
  stallOnce(offset: number, digest?: string): void;
  /** Strip Range from blob requests, so the registry answers 200 with the whole blob. */
  ignoreRange(on: boolean): void;
  /** Change a byte of the body of `digest` in its next `deliveries` deliveries (Infinity: always). */
  corrupt(digest: string, deliveries: number): void;
  /** Blob body bytes sent since the last resetCounts(). */
  readonly blobBytes: number;
  bytesFor(digest: string): number;
  readonly deliveries: readonly BlobDelivery[];
  resetCounts(): void;
  close(): Promise<void>;
}

export interface RegistryProxyOptions {
  /** `host:port` of the registry. Default 127.0.0.1:5000. */
  target?: string;
}

const BLOB_PATH = /^\/v2\/.+\/blobs\/(sha256:[0-9a-f]{64})$/;

export async function startRegistryProxy(options: RegistryProxyOptions = {}): Promise<RegistryProxy> {
  const target = options.target ?? TEST_REGISTRY_HOST;
  const [targetHost, targetPort] = splitHost(target);
  let cutEvery: number | undefined;
  let stall: { offset: number; digest: string | undefined } | undefined;
  let ignoreRange = false;
  const corruptions = new Map<string, number>();
  let deliveries: BlobDelivery[] = [];
  let blobBytes = 0;
  let perDigest = new Map<string, number>();
  /** Responses a fault now owns (stalled open, or being cut): an upstream error must not close them early. */
  const held = new WeakSet<ServerResponse>();

  const server: Server = createServer((req, res) => {
    const match = req.method === 'GET' ? BLOB_PATH.exec((req.url ?? '').split('?')[0] ?? '') : null;
    const headers: IncomingHttpHeaders = { ...req.headers };
    const range = req.headers.range;
    if (match && ignoreRange) delete headers.range;
    const upstream = request({ host: targetHost, port: targetPort, method: req.method, path: req.url, headers, agent: false }, (answer) => {
      const status = answer.statusCode ?? 502;
      if (!match || (status !== 200 && status !== 206)) {
        res.writeHead(status, answer.headers);
        answer.pipe(res);
        return;
      }
      const digest = match[1]!;
      const delivery: BlobDelivery = {
        digest,
        status,
        range,
        authorized: req.headers.authorization !== undefined,
        start: status === 206 ? Number(/^bytes (\d+)-/.exec(answer.headers['content-range'] ?? '')?.[1] ?? 0) : 0,
        sent: 0,
        end: 'open',
        corrupted: false,
      };
      deliveries.push(delivery);
      const left = corruptions.get(digest) ?? 0;
      if (left > 0) {
        corruptions.set(digest, left - 1);
        delivery.corrupted = true;
      }
      res.writeHead(status, answer.headers);
      forwardBlob(answer, res, delivery);
    });
    upstream.once('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else if (!held.has(res)) res.destroy();
    });
    req.pipe(upstream);
    res.once('close', () => upstream.destroy());
  });

  /** Copies a blob body to the client, applying the faults in force as each chunk passes. */
  function forwardBlob(answer: IncomingMessage, res: ServerResponse, delivery: BlobDelivery): void {
    const cutAt = cutEvery; // fixed per delivery: a change mid-body applies to the next one
    let corruptPending = delivery.corrupted;
    const finish = (end: BlobDelivery['end']) => {
      if (delivery.end === 'open') delivery.end = end;
    };
    res.once('close', () => finish('client-closed'));
    const send = (chunk: Buffer, then?: () => void) => {
      if (corruptPending && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[chunk.length >> 1] = chunk[chunk.length >> 1]! ^ 0xff;
        corruptPending = false;
      }
      delivery.sent += chunk.length;
      blobBytes += chunk.length;
      perDigest.set(delivery.digest, (perDigest.get(delivery.digest) ?? 0) + chunk.length);
      const flowing = res.write(chunk, then);
      if (!flowing && !then) {
        answer.pause();
        res.once('drain', () => answer.resume());
      }
    };
    answer.on('data', (data: Buffer) => {
      if (delivery.end !== 'open') return;
      let chunk = data;
      const position = delivery.start + delivery.sent;
      if (stall && (stall.digest === undefined || stall.digest === delivery.digest) && position + chunk.length > stall.offset) {
        const keep = Math.max(0, stall.offset - position);
        stall = undefined;
        if (keep > 0) send(chunk.subarray(0, keep));
        finish('stalled');
        held.add(res);
        // Nothing more is sent, and nothing closed: the client must notice by itself.
        answer.destroy();
        return;
      }
      if (cutAt !== undefined && delivery.sent + chunk.length >= cutAt) {
        chunk = chunk.subarray(0, cutAt - delivery.sent);
        finish('cut');
        held.add(res);
        answer.destroy();
        // Written before the close: the client receives these bytes, then an early end.
        send(chunk, () => res.socket?.destroy());
        return;
      }
      send(chunk);
    });
    answer.once('end', () => {
      if (delivery.end !== 'open') return;
      finish('complete');
      res.end();
    });
    answer.once('error', () => {
      if (delivery.end === 'open') res.destroy();
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = `127.0.0.1:${port}`;
  let closed: Promise<void> | undefined;

  return {
    port,
    host,
    via: (image) => {
      if (!image.startsWith(`${target}/`)) throw new Error(`${image} is not named through ${target}`);
      return `${host}${image.slice(target.length)}`;
    },
    cutEvery: (bytes) => {
      if (bytes !== undefined && !(bytes > 0)) throw new RangeError('cutEvery needs a positive byte count');
      cutEvery = bytes;
    },
    stallOnce: (offset, digest) => {
      stall = { offset, digest };
    },
    ignoreRange: (on) => {
      ignoreRange = on;
    },
    corrupt: (digest, count) => {
      corruptions.set(digest, count);
    },
    get blobBytes() {
      return blobBytes;
    },
    bytesFor: (digest) => perDigest.get(digest) ?? 0,
    get deliveries() {
      return deliveries;
    },
    resetCounts: () => {
      blobBytes = 0;
      perDigest = new Map();
      deliveries = [];
    },
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}

function splitHost(hostPort: string): [string, number] {
  const colon = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, colon), Number(hostPort.slice(colon + 1))];
}
