/**
 * A TCP proxy on loopback that breaks the link between an MQTT client (a
 * device agent) and the broker on command: drop it, refuse it, stall it
 * half-open, slow it down, or flap it. `tc netem` is not available where these
 * tests run, so the faults are made here, in user space, one chunk at a time.
 *
 * Invariants: bytes in one direction are delivered in the order they arrived,
 * or dropped (while stalled), never held back for later; every socket and
 * timer is gone once close() resolves.
 */
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface FaultProxyOptions {
  /** Where the proxy forwards to; 127.0.0.1 by default. */
  targetHost?: string;
  targetPort: number;
}

export interface FlapOptions {
  /** Link-up time before each cut is drawn from [minMs, maxMs]. */
  minMs: number;
  maxMs: number;
  /** After each cut, new connections are refused this long (0, the default: reconnects succeed at once). */
  downMs?: number;
  /** Returns [0, 1); inject a fixed sequence for a deterministic schedule. */
  random?: () => number;
}

export interface FaultProxyStats {
  /** Connections the listener accepted, refused ones included. */
  accepted: number;
  /** Accepted and reset at once because refuse(true) was in force. */
  refused: number;
  /** Bytes delivered client → target and target → client. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes discarded: sent while stalled, or toward a side already gone. */
  bytesDropped: number;
  /** cut() calls, flaps' included. */
  cuts: number;
}

export interface FaultProxy {
  readonly port: number;
  /** `mqtt://127.0.0.1:<port>`. */
  readonly url: string;
  /** Client connections on which neither side has hung up yet. */
  readonly connections: number;
  /** A snapshot: compare two of them to see what happened in between. */
  readonly stats: FaultProxyStats;
  /** Resets both sockets of every connection now (RST: each side sees ECONNRESET or a close); returns how many it cut. */
  cut(): number;
  /** While on, new connections are accepted and reset at once (the hub is unreachable); open ones are left alone. */
  refuse(on: boolean): void;
  /** cut() and refuse(true). */
  down(): void;
  /** refuse(false). */
  up(): void;
  /**
   * Half-open link: nothing is forwarded either way and nothing is closed, not
   * even a side's hang-up, like a dead NAT mapping. Bytes are discarded, not
   * held, so nothing arrives late after resume(); each side must find out by
   * its own keepalive.
   */
  stall(): void;
  /** Forwards again; a connection one side hung up on during the stall is closed now. */
  resume(): void;
  /** Adds `ms` of latency to every chunk from now on, both directions, order kept (0 = none). */
  delay(ms: number): void;
  /** Cuts every connection at random intervals until the returned function is called. It owns refuse() while it runs. */
  flap(options: FlapOptions): () => void;
  /** Stops flaps, destroys every socket, clears every timer, closes the listener; idempotent. */
  close(): Promise<void>;
}

/** How faults apply right now; read when a chunk arrives (delay) and when it is due (stall). */
interface Faults {
  stalled: boolean;
  delayMs: number;
}

/** One client connection and its connection to the target. */
interface Link {
  client: Socket;
  target: Socket;
  up: DelayQueue;
  down: DelayQueue;
  /** Either side sent FIN or closed. */
  hungUp: boolean;
  /** A side hung up while stalled; close the link on resume(). */
  closeOnResume: boolean;
}

/** A hang-up travels the queue like data, so it cannot overtake delayed bytes. */
const HANG_UP = null;
type Item = Buffer | typeof HANG_UP;

/** One direction of a link: items held until due (the injected delay), then handed on in arrival order. */
class DelayQueue {
  private readonly queue: { due: number; item: Item }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly faults: Faults,
    private readonly deliver: (item: Item) => void,
  ) {}

  push(item: Item): void {
    if (this.stopped) return;
    // First in, first out: an item waits for those ahead of it, so a shorter delay set later cannot reorder.
    this.queue.push({ due: performance.now() + this.faults.delayMs, item });
    if (this.timer === undefined) this.drain();
  }

  /** Drops what is queued and ignores what comes after: the link is gone. */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private drain(): void {
    this.timer = undefined;
    for (let head = this.queue[0]; head !== undefined && !this.stopped; head = this.queue[0]) {
      const wait = head.due - performance.now();
      if (wait > 0) {
        this.timer = setTimeout(() => this.drain(), Math.ceil(wait));
        return;
      }
      this.queue.shift();
      this.deliver(head.item);
    }
  }
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1';
  const faults: Faults = { stalled: false, delayMs: 0 };
  const stats: FaultProxyStats = { accepted: 0, refused: 0, bytesUp: 0, bytesDown: 0, bytesDropped: 0, cuts: 0 };
  const links = new Set<Link>();
  const flaps = new Set<() => void>();
  let refusing = false;
  let closing: Promise<void> | undefined;

  // allowHalfOpen: a FIN is passed on through the queue, after the data ahead of it, not by Node at once.
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    stats.accepted += 1;
    // ECONNRESET, EPIPE and the like are what this proxy is for; 'close' follows every error and does the work.
    client.on('error', () => undefined);
    if (refusing || closing) {
      if (refusing) stats.refused += 1;
      reset(client);
      return;
    }
    const target = createConnection({ host: targetHost, port: options.targetPort, allowHalfOpen: true, noDelay: true });
    target.on('error', () => undefined);
    const link: Link = {
      client,
      target,
      hungUp: false,
      closeOnResume: false,
      up: new DelayQueue(faults, (item) => deliver(link, item, client, target, 'bytesUp')),
      down: new DelayQueue(faults, (item) => deliver(link, item, target, client, 'bytesDown')),
    };
    links.add(link);
    wire(link, client, link.up);
    wire(link, target, link.down);
  });

  function wire(link: Link, from: Socket, direction: DelayQueue): void {
    let hungUp = false;
    const hangUp = () => {
      if (hungUp) return;
      hungUp = true;
      link.hungUp = true;
      direction.push(HANG_UP);
    };
    from.on('data', (chunk: Buffer) => direction.push(chunk));
    from.on('end', hangUp);
    // A reset or error closes without 'end'.
    from.on('close', () => {
      hangUp();
      if (link.client.destroyed && link.target.destroyed) forget(link);
    });
  }

  function deliver(link: Link, item: Item, from: Socket, to: Socket, counter: 'bytesUp' | 'bytesDown'): void {
    if (item === HANG_UP) {
      // A dead NAT mapping carries no FIN either: the other side learns by its keepalive, or at resume().
      if (faults.stalled) link.closeOnResume = true;
      else close(link);
    } else if (faults.stalled || to.destroyed) {
      stats.bytesDropped += item.length;
    } else {
      stats[counter] += item.length;
      // Backpressure: a slow reader slows the writer instead of growing memory here.
      const alreadyWaiting = to.writableNeedDrain;
      if (!to.write(item) && !alreadyWaiting) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    }
  }

  /** Ends both sockets after what was already written to them, then destroys them. */
  function close(link: Link): void {
    for (const socket of [link.client, link.target]) {
      if (!socket.destroyed) socket.end(() => socket.destroy());
    }
  }

  function forget(link: Link): void {
    link.up.stop();
    link.down.stop();
    links.delete(link);
  }

  function cut(): number {
    stats.cuts += 1;
    const count = links.size;
    for (const link of links) {
      forget(link);
      reset(link.client);
      reset(link.target);
    }
    return count;
  }

  function refuse(on: boolean): void {
    refusing = on;
  }

  function flap({ minMs, maxMs, downMs = 0, random = Math.random }: FlapOptions): () => void {
    if (!(minMs > 0 && maxMs >= minMs && downMs >= 0)) {
      throw new RangeError(`flap needs 0 < minMs <= maxMs and downMs >= 0 (got ${minMs}, ${maxMs}, ${downMs})`);
    }
    let timer: NodeJS.Timeout | undefined;
    let refusedByFlap = false;
    const scheduleCut = () => {
      timer = setTimeout(
        () => {
          cut();
          if (downMs === 0) return scheduleCut();
          refusedByFlap = true;
          refuse(true);
          timer = setTimeout(() => {
            refusedByFlap = false;
            refuse(false);
            scheduleCut();
          }, downMs);
        },
        minMs + random() * (maxMs - minMs),
      );
    };
    const stop = () => {
      if (!flaps.delete(stop)) return;
      clearTimeout(timer);
      if (refusedByFlap) refuse(false);
    };
    flaps.add(stop);
    scheduleCut();
    return stop;
  }

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
    url: `mqtt://127.0.0.1:${port}`,
    get connections() {
      let open = 0;
      for (const link of links) if (!link.hungUp) open += 1;
      return open;
    },
    get stats() {
      return { ...stats };
    },
    cut,
    refuse,
    down() {
      cut();
      refuse(true);
    },
    up() {
      refuse(false);
    },
    stall() {
      faults.stalled = true;
    },
    resume() {
      faults.stalled = false;
      for (const link of links) if (link.closeOnResume) close(link);
    },
    delay(ms) {
      if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError(`delay must be a finite number of ms >= 0, got ${ms}`);
      faults.delayMs = ms;
    },
    flap,
    close() {
      closing ??= (async () => {
        for (const stop of [...flaps]) stop();
        for (const link of links) {
          forget(link);
          link.client.destroy();
          link.target.destroy();
        }
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}

/** An RST rather than a FIN, as when a NAT or a middlebox drops the connection. */
function reset(socket: Socket): void {
  // resetAndDestroy() on a socket still connecting would wait for the connect; there is nothing to reset yet.
  if (socket.destroyed) return;
  if (socket.connecting) socket.destroy();
  else socket.resetAndDestroy();
}
