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
 *   bottleneck does, so the queue stays near `queueBytes` while someone
 *   floods, and nothing is dropped.
 * - Per connection, at most `receiveWindowBytes` are between its sender and
 *   the device's reading (in the queue, in the relay's socket toward the
 *   device, in the device's socket unread), as TCP's receive window allows a
 *   sender: a device that reads slowly (a paced download) sets the pace of its
 *   bytes on the link and lets only a window's worth into the queue, and one
 *   that does not read stops its own sender, not the others. The bytes past
 *   the queue are read from the kernel's socket queues (/proc/net/tcp): on
 *   loopback the kernel would otherwise let megabytes wait past the link,
 *   bytes that on a real link would never have crossed it. Without
 *   /proc/net/tcp only Node's own write buffer holds a connection back.
 * - Toward the targets (the uplink) bytes pass at once, with backpressure:
 *   requests and acknowledgements are not what these tests contend for.
 * - Every socket and timer is gone once close() resolves.
 */
import { readFileSync } from 'node:fs';
import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface ThinLinkOptions {
  /** The downlink's capacity in bytes per second, shared by every route. */
  downBytesPerSecond: number;
  /** The modem's buffer in bytes: how much may wait for the downlink before senders are held back. 128 KiB by default. */
  queueBytes?: number;
  /** A device's TCP receive window: the most bytes of one connection sent and not yet read by the device. 256 KiB by default. */
  receiveWindowBytes?: number;
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
  /** Since the last resetPeaks(): how long its chunks waited in the queue on average, in ms (0 when none left it). */
  meanWaitMs: number;
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
  /** Starts a new window for every route's maxBytesAhead, maxWaitMs and meanWaitMs. */
  resetPeaks(): void;
  /** Destroys every connection, clears the timers, closes every listener; idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_QUEUE_BYTES = 128 * 1024;
export const DEFAULT_RECEIVE_WINDOW_BYTES = 256 * 1024;

/** How often the queue is drained while it holds something; also the longest burst the link delivers at once. */
const TICK_MS = 5;

/** A route's counters, with the sums its mean wait is made of. */
interface RouteCounters extends Omit<RouteStats, 'meanWaitMs'> {
  waitedChunks: number;
  waitedMs: number;
}
/** How often the socket queues past the link are read while some connection has bytes there. */
const WINDOW_CHECK_MS = 20;

/** One device-side connection and its connection to the target. */
interface Connection {
  route: RouteCounters;
  device: Socket;
  target: Socket;
  /** Reading from the target is paused: the queue was full, the window is used up, or Node's buffer toward the device is. */
  held: boolean;
  /** This connection's bytes in the queue. */
  inQueue: number;
  /** Its bytes past the queue not yet read by the device: as last read from the kernel, plus what was delivered since. */
  pastQueue: number;
  /** `<port>:<port>` of the relay's socket toward the device, and of the device's socket, as /proc/net/tcp names them. */
  relayEnd: string;
  deviceEnd: string;
  gone: boolean;
}

/** A chunk toward the device, or its target's hang-up (`null`), which must not overtake the data ahead of it. */
interface Queued {
  connection: Connection;
  chunk: Buffer | null;
  enqueuedAt: number;
  /** Its first byte has left the queue: its wait is counted. */
  started: boolean;
}

export function startThinLink(options: ThinLinkOptions): ThinLink {
  const { downBytesPerSecond } = options;
  const queueBytes = options.queueBytes ?? DEFAULT_QUEUE_BYTES;
  const windowBytes = options.receiveWindowBytes ?? DEFAULT_RECEIVE_WINDOW_BYTES;
  if (!(Number.isFinite(downBytesPerSecond) && downBytesPerSecond > 0)) {
    throw new RangeError(`downBytesPerSecond must be a positive number, got ${downBytesPerSecond}`);
  }
  if (!(Number.isInteger(queueBytes) && queueBytes > 0)) throw new RangeError(`queueBytes must be a positive integer, got ${queueBytes}`);
  if (!(Number.isInteger(windowBytes) && windowBytes > 0)) {
    throw new RangeError(`receiveWindowBytes must be a positive integer, got ${windowBytes}`);
  }

  const queue: Queued[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  let windowTimer: NodeJS.Timeout | undefined;
  let lastServed = 0;
  let credit = 0;
  const servers = new Set<Server>();
  const connections = new Set<Connection>();
  const routes: RouteCounters[] = [];
  let closing: Promise<void> | undefined;

  const windowUsedUp = (connection: Connection) => connection.inQueue + connection.pastQueue >= windowBytes;

  function enqueue(connection: Connection, chunk: Buffer | null): void {
    if (connection.gone) return;
    const route = connection.route;
    route.maxBytesAhead = Math.max(route.maxBytesAhead, queued);
    queue.push({ connection, chunk, enqueuedAt: performance.now(), started: false });
    if (chunk) {
      queued += chunk.length;
      connection.inQueue += chunk.length;
    }
    if (queued >= queueBytes || windowUsedUp(connection)) hold(connection);
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
    // A late timer delivers what the elapsed time allows, but idle time earns nothing beyond a few ticks.
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
      // A chunk's wait is until its first byte leaves.
      if (!head.started) {
        head.started = true;
        const waited = now - head.enqueuedAt;
        route.maxWaitMs = Math.max(route.maxWaitMs, waited);
        route.waitedChunks += 1;
        route.waitedMs += waited;
      }
      if (bytes === chunk.length) queue.shift();
      else head.chunk = chunk.subarray(bytes);
      queued -= bytes;
      connection.inQueue -= bytes;
      connection.pastQueue += bytes;
      route.bytesDown += bytes;
      if (!connection.gone && !connection.device.destroyed && !connection.device.write(chunk.subarray(0, bytes))) hold(connection);
      watchWindows();
    }
    if (queued < queueBytes) for (const connection of connections) release(connection);
    if (queue.length > 0) timer = setTimeout(serve, TICK_MS);
  }

  function hold(connection: Connection): void {
    if (connection.held) return;
    connection.held = true;
    connection.target.pause();
  }

  /** Reads from the target again if neither the queue, the window nor Node's buffer holds it back. */
  function release(connection: Connection): void {
    if (!connection.held || connection.gone || queued >= queueBytes || windowUsedUp(connection) || connection.device.writableNeedDrain) {
      return;
    }
    connection.held = false;
    connection.target.resume();
  }

  function watchWindows(): void {
    if (windowTimer === undefined && !closing) windowTimer = setTimeout(checkWindows, WINDOW_CHECK_MS);
  }

  /** Reads how much of each connection waits past the queue, and holds or releases it by its window. */
  function checkWindows(): void {
    windowTimer = undefined;
    const waiting = socketQueues();
    let again = false;
    for (const connection of connections) {
      // Node's buffer toward the device, the relay's unsent or unacknowledged bytes, the device's received and unread ones.
      const kernel = waiting ? (waiting.get(connection.relayEnd)?.tx ?? 0) + (waiting.get(connection.deviceEnd)?.rx ?? 0) : 0;
      connection.pastQueue = connection.device.writableLength + kernel;
      if (windowUsedUp(connection)) hold(connection);
      else release(connection);
      again ||= connection.pastQueue > 0;
    }
    if (again) watchWindows();
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

  function accept(route: RouteCounters, device: Socket, targetPort: number, targetHost: string): void {
    route.connections += 1;
    device.on('error', () => undefined);
    if (closing) {
      device.destroy();
      return;
    }
    const target = createConnection({ host: targetHost, port: targetPort, allowHalfOpen: true, noDelay: true });
    target.on('error', () => undefined);
    const connection: Connection = {
      route,
      device,
      target,
      held: false,
      inQueue: 0,
      pastQueue: 0,
      relayEnd: `${device.localPort}:${device.remotePort}`,
      deviceEnd: `${device.remotePort}:${device.localPort}`,
      gone: false,
    };
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
      const stats: RouteCounters = {
        connections: 0,
        bytesDown: 0,
        bytesUp: 0,
        maxBytesAhead: 0,
        maxWaitMs: 0,
        waitedChunks: 0,
        waitedMs: 0,
      };
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
          const { waitedChunks, waitedMs, ...shown } = stats;
          return { ...shown, meanWaitMs: waitedChunks === 0 ? 0 : waitedMs / waitedChunks };
        },
      };
    },
    resetPeaks() {
      for (const stats of routes) {
        stats.maxBytesAhead = 0;
        stats.maxWaitMs = 0;
        stats.waitedChunks = 0;
        stats.waitedMs = 0;
      }
    },
    close() {
      closing ??= (async () => {
        clearTimeout(timer);
        timer = undefined;
        clearTimeout(windowTimer);
        windowTimer = undefined;
        for (const connection of [...connections]) drop(connection);
        queue.length = 0;
        queued = 0;
        await Promise.all([...servers].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
      })();
      return closing;
    },
  };
}

/**
 * Each IPv4 TCP socket's send queue (`tx`: written, not yet acknowledged by the peer) and receive queue
 * (`rx`: received, not yet read), by `<local port>:<remote port>`; undefined where /proc/net/tcp cannot be read.
 */
function socketQueues(): Map<string, { tx: number; rx: number }> | undefined {
  let table: string;
  try {
    table = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return undefined;
  }
  const queues = new Map<string, { tx: number; rx: number }>();
  // "  sl  local_address rem_address   st tx_queue:rx_queue …", addresses as hex IP:port, queues as hex.
  for (const line of table.split('\n').slice(1)) {
    const [, local, remote, , queue] = line.trim().split(/\s+/);
    if (!local || !remote || !queue) continue;
    const [tx = '0', rx = '0'] = queue.split(':');
    const port = (address: string) => Number.parseInt(address.slice(address.indexOf(':') + 1), 16);
    queues.set(`${port(local)}:${port(remote)}`, { tx: Number.parseInt(tx, 16), rx: Number.parseInt(rx, 16) });
  }
  return queues;
}
