/**
 * Bytes on each device's MQTT connection, both ways, whole packets with
 * their MQTT framing (fixed header, topic, packet id, CONNECT and CONNACK,
 * PINGs): what the device's link carries above TCP, so an operator sees
 * what each device costs on a metered link. Over TLS it is the bytes inside
 * the TLS records; TCP/IP headers and TLS framing are not seen here.
 *
 * A connection is an agent's when its will is the offline status on its own
 * status topic (as broker/mqtt/protocol-gate.ts tells agents from other
 * clients): dashboards, services and CLIs are not counted, so the series stay
 * one pair per device whatever client ids others invent. Bytes a connection
 * carries before Aedes has accepted its CONNECT (the CONNECT itself) are
 * added once it has; a refused connection counts for nobody.
 *
 * Totals are since the hub started, per device id, over every connection
 * the device made. Counting wraps the connection's `read` (Aedes reads with
 * `conn.read()` on 'readable', lib/client.js) and `write` on that one
 * connection object: a few additions per packet, no per-packet allocation,
 * and no closure per connection (WATCH).
 */
import type { Duplex } from 'node:stream';
import type { Client } from 'aedes';
import type { Topics } from '../../shared/index.js';
import { isAgentClient } from './protocol-gate.js';

export interface DeviceLinkBytes {
  device: string;
  /** From the device to the hub. */
  bytesIn: number;
  /** From the hub to the device. */
  bytesOut: number;
}

interface Totals {
  bytesIn: number;
  bytesOut: number;
}

/** One connection's counts until it is known to be an agent's (then `totals`), or known not to be (`ignored`). */
interface Watch {
  owner: LinkBytes;
  /** The connection's own read and write, which the counting ones call. */
  read: Duplex['read'];
  write: Duplex['write'];
  pendingIn: number;
  pendingOut: number;
  totals?: Totals;
  ignored?: boolean;
}

/**
 * Where a watched connection keeps its Watch. The counting read and write
 * are the same two functions for every connection, finding their state
 * here, rather than closures made per connection: those cost the hub a few
 * hundred bytes of heap per idle device.
 */
const WATCH = Symbol('flotilla.linkBytes');
type Watched = Duplex & { [WATCH]: Watch };

function countedRead(this: Watched, ...args: Parameters<Duplex['read']>): unknown {
  const watch = this[WATCH];
  const chunk: unknown = watch.read.apply(this, args);
  if (chunk != null) watch.owner.count(this, watch, 'in', byteLength(chunk));
  return chunk;
}

function countedWrite(this: Watched, ...args: unknown[]): boolean {
  const watch = this[WATCH];
  watch.owner.count(this, watch, 'out', byteLength(args[0]));
  return (watch.write as (...a: unknown[]) => boolean).apply(this, args);
}

export class LinkBytes {
  private readonly devices = new Map<string, Totals>();

  constructor(private readonly topics: Topics) {}

  /** Counts an accepted connection's bytes from now on: call before Aedes reads from it. */
  watch(conn: Duplex): void {
    (conn as Watched)[WATCH] = { owner: this, read: conn.read, write: conn.write, pendingIn: 0, pendingOut: 0 };
    conn.read = countedRead;
    conn.write = countedWrite as Duplex['write'];
  }

  /** Adds a chunk's bytes to the device's totals, or holds them until the connection is known to be a device's. */
  count(conn: Duplex, watch: Watch, direction: 'in' | 'out', bytes: number): void {
    if (watch.ignored) return;
    const totals = watch.totals ?? this.resolve(conn, watch);
    if (!totals) {
      if (direction === 'in') watch.pendingIn += bytes;
      else watch.pendingOut += bytes;
      return;
    }
    if (direction === 'in') totals.bytesIn += bytes;
    else totals.bytesOut += bytes;
  }

  /** Every device counted since the hub started. */
  *all(): Iterable<DeviceLinkBytes> {
    for (const [device, totals] of this.devices) yield { device, ...totals };
  }

  get(deviceId: string): DeviceLinkBytes | undefined {
    const totals = this.devices.get(deviceId);
    return totals ? { device: deviceId, ...totals } : undefined;
  }

  /** The device's totals once Aedes has accepted the connection's CONNECT; undefined before. */
  private resolve(conn: Duplex, watch: Watch): Totals | undefined {
    const client = (conn as Duplex & { client?: Client }).client;
    if (!client?.connected) return undefined;
    const id = client.id;
    if (!isAgentClient(client, this.topics)) {
      watch.ignored = true;
      return undefined;
    }
    let totals = this.devices.get(id);
    if (!totals) {
      totals = { bytesIn: 0, bytesOut: 0 };
      this.devices.set(id, totals);
    }
    totals.bytesIn += watch.pendingIn;
    totals.bytesOut += watch.pendingOut;
    watch.pendingIn = 0;
    watch.pendingOut = 0;
    watch.totals = totals;
    return totals;
  }
}

function byteLength(chunk: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk);
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}
