/**
 * A thin link in user space: one device's cellular or satellite downlink,
 * shared by every connection the device makes through it. Each `route(port)`
 * is a loopback listener forwarding to a target (the hub's MQTT port, a
 * registry); everything the targets send toward the device goes through ONE
 * FIFO queue (the modem's buffer) drained at ONE capacity (bytes/s). So, as
 * on a real link, a download that keeps the buffer full makes an MQTT message
 * wait behind it, and a download paced below the capacity leaves it room.
 * `tc netem` is not available where the tests run; this is enough.
 *
 * Invariants:
 * - Bytes toward the device leave the queue in the order they entered it,
 *   across all routes, never faster than `downBytesPerSecond` over any
 *   stretch longer than one tick (no credit is saved up while the link idles).
 * - A chunk is always admitted to the queue; a route whose chunk found the
 *   queue at or above `queueBytes` stops being read until the queue is below
 *   it again. Its sender then sees TCP backpressure, as a sender on a full
 *   bottleneck sees a closed window, so the queue stays near `queueBytes`
 *   while someone floods and nothing is dropped.
 * - A connection whose device side does not read (its socket's buffer is
 *   full) is not read from its target either: a receiver's closed window
 *   stops its sender, not the others.
 * - Toward the targets (the uplink) bytes pass at once, with backpressure:
 *   requests and acknowledgements are not what these tests contend for.
 * - Every socket and timer is gone once close() resolves.
 */
import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface ThinLinkOptions {
  /** The downlink's capacity in bytes per second, shared by every route. */
  downBytesPerSecond: number;
  /** The modem's buffer in bytes: how much may wait for the downlink before senders are held back. 128 KiB by default. */
  queueBytes?: number;
}

export interface RouteStats {
  /** Connections accepted on this route so far. */
  connections: number;
  /** Bytes delivered to the device (out of the queue) and to the target. */
  bytesDown: number;
  bytesUp: number;
  /** Since the last resetPeaks(): the most bytes queued ahead of a chunk of this route when it entered the queue. */
  maxBytesAhead: number;
  /** Since the last resetPeaks(): the longest a chunk of this route waited in the queue, in ms. */
  maxWaitMs: number;
}

export interface ThinLinkRoute {
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly stats: RouteStats;
}

export interface ThinLink {
  readonly downBytesPerSecond: number;
  readonly queueBytes: number;
  /** A new listener on loopback forwarding to `targetPort` through this link. */
  route(targetPort: number, targetHost?: string): Promise<ThinLinkRoute>;
  /** Bytes waiting in the queue now. */
  readonly queuedBytes: number;
  /** Starts a new window for every route's maxBytesAhead and maxWaitMs. */
  resetPeaks(): void;
  /** Destroys every connection, clears the timer, closes every listener; idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_QUEUE_BYTES = 128 * 1024;

/** How often the queue is drained while it holds something; also the longest burst the link delivers at once. */
const TICK_MS = 5;

/** One device-side connection and its connection to the target. */
interface Connection {
  route: RouteStats;
  device: Socket;
  target: Socket;
  /** Reading from the target is paused: the queue was full, or the device is not reading. */
  held: boolean;
  gone: boolean;
}

/** A chunk toward the device, or its target's hang-up (`null`), which must not overtake the data ahead of it. */
interface Queued {
  connection: Connection;
  chunk: Buffer | null;
  enqueuedAt: number;
}

export function startThinLink(options: ThinLinkOptions): ThinLink {
  const { downBytesPerSecond } = options;
  const queueBytes = options.queueBytes ?? DEFAULT_QUEUE_BYTES;
  if (!(Number.isFinite(downBytesPerSecond) && downBytesPerSecond > 0)) {
    throw new RangeError(`downBytesPerSecond must be a positive number, got ${downBytesPerSecond}`);
  }
  if (!(Number.isInteger(queueBytes) && queueBytes > 0)) throw new RangeError(`queueBytes must be a positive integer, got ${queueBytes}`);

  const queue: Queued[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  let lastServed = 0;
  let credit = 0;
  const servers = new Set<Server>();
  const connections = new Set<Connection>();
  const routes: RouteStats[] = [];
  let closing: Promise<void> | undefined;

  function enqueue(connection: Connection, chunk: Buffer | null): void {
    if (connection.gone) return;
    const route = connection.route;
    route.maxBytesAhead = Math.max(route.maxBytesAhead, queued);
    queue.push({ connection, chunk, enqueuedAt: performance.now() });
    if (chunk) queued += chunk.length;
    if (queued >= queueBytes) hold(connection);
    if (timer === undefined) {
      lastServed = performance.now();
      credit = 0;
      timer = setTimeout(serve, 0);
    }
  }

  /** Delivers what the capacity allows since the last tick, head first, splitting the head chunk if need be. */
  function serve(): void {
    timer = undefined;
    const now = performance.now();
    // A late timer delivers what the elapsed time allows, but idle time earns nothing beyond one tick.
    credit = Math.min(credit + ((now - lastServed) * downBytesPerSecond) / 1000, Math.max((TICK_MS * 4 * downBytesPerSecond) / 1000, 1));
    lastServed = now;
    for (let head = queue[0]; head !== undefined; head = queue[0]) {
      const { connection, chunk } = head;
      if (chunk === null) {
        queue.shift();
        if (!connection.gone && !connection.device.destroyed) connection.device.end();
        continue;
      }
      const bytes = Math.min(chunk.length, Math.floor(credit));
      if (bytes === 0) break;
      credit -= bytes;
      const route = connection.route;
      route.maxWaitMs = Math.max(route.maxWaitMs, now - head.enqueuedAt);
      if (bytes === chunk.length) queue.shift();
      else head.chunk = chunk.subarray(bytes);
      queued -= bytes;
      route.bytesDown += bytes;
      // A device that does not read holds its own target back (its window is closed), not the others.
      if (!connection.gone && !connection.device.destroyed && !connection.device.write(chunk.subarray(0, bytes))) hold(connection);
    }
    if (queued < queueBytes) for (const connection of connections) release(connection);
    if (queue.length > 0) timer = setTimeout(serve, TICK_MS);
  }

  function hold(connection: Connection): void {
    if (connection.held) return;
    connection.held = true;
    connection.target.pause();
  }

  /** Reads from the target again if neither the queue nor the device holds it back. */
  function release(connection: Connection): void {
    if (!connection.held || connection.gone || queued >= queueBytes || connection.device.writableNeedDrain) return;
    connection.held = false;
    connection.target.resume();
  }

  function drop(connection: Connection): void {
    if (connection.gone) return;
    connection.gone = true;
    connections.delete(connection);
    for (let i = queue.length - 1; i >= 0; i--) {
      const item = queue[i]!;
      if (item.connection !== connection) continue;
      if (item.chunk) queued -= item.chunk.length;
      queue.splice(i, 1);
    }
    connection.device.destroy();
    connection.target.destroy();
  }

  function accept(route: RouteStats, device: Socket, targetPort: number, targetHost: string): void {
    route.connections += 1;
    device.on('error', () => undefined);
    if (closing) {
      device.destroy();
      return;
    }
    const target = createConnection({ host: targetHost, port: targetPort, allowHalfOpen: true, noDelay: true });
    target.on('error', () => undefined);
    const connection: Connection = { route, device, target, held: false, gone: false };
    connections.add(connection);

    target.on('data', (chunk: Buffer) => enqueue(connection, chunk));
    target.on('end', () => enqueue(connection, null));
    device.on('drain', () => release(connection));
    device.on('data', (chunk: Buffer) => {
      route.bytesUp += chunk.length;
      if (!target.write(chunk)) {
        device.pause();
        target.once('drain', () => device.resume());
      }
    });
    device.on('end', () => {
      if (!target.destroyed) target.end();
    });
    for (const socket of [device, target]) {
      socket.on('close', () => {
        // The target's hang-up still travels the queue; the device's ends the connection now.
        if (socket === device || (device.destroyed && target.destroyed)) drop(connection);
      });
    }
  }

  return {
    downBytesPerSecond,
    queueBytes,
    get queuedBytes() {
      return queued;
    },
    async route(targetPort, targetHost = '127.0.0.1') {
      if (closing) throw new Error('thin link is closed');
      const stats: RouteStats = { connections: 0, bytesDown: 0, bytesUp: 0, maxBytesAhead: 0, maxWaitMs: 0 };
      routes.push(stats);
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (device) => accept(stats, device, targetPort, targetHost));
      servers.add(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      const port = (server.address() as AddressInfo).port;
      return {
        port,
        address: `127.0.0.1:${port}`,
        get stats() {
          return { ...stats };
        },
      };
    },
    resetPeaks() {
      for (const stats of routes) {
        stats.maxBytesAhead = 0;
        stats.maxWaitMs = 0;
      }
    },
    close() {
      closing ??= (async () => {
        clearTimeout(timer);
        timer = undefined;
        for (const connection of [...connections]) drop(connection);
        queue.length = 0;
        queued = 0;
        await Promise.all([...servers].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
      })();
      return closing;
    },
  };
}
