/**
 * The largest MQTT packet a client may send. mqtt-packet (Aedes 1.2's parser)
 * has no size limit: it collects a packet's bytes until its declared
 * "remaining length" (up to 256 MiB, MQTT 3.1.1 §2.2.3) has arrived, so one
 * client could make the hub buffer 256 MiB, and a thousand of them the hub's
 * memory. Aedes has no option for it either, so the cap sits in front of the
 * parser: every chunk Aedes reads from the connection passes a scanner that
 * follows the packet boundaries (fixed header, remaining length, body), and a
 * packet whose header declares more than the cap closes the connection at
 * once, before its body is read, let alone buffered.
 *
 * The first packet of a connection must be CONNECT [MQTT-3.1.0-1]; before
 * any client has authenticated it is capped much lower (`maxConnectBytes`):
 * a CONNECT carries ids, credentials and a will, Flotilla's a few hundred
 * bytes.
 *
 * MQTT 3.1.1 has no way to say "too large" (MQTT 5's reason 0x95 does not
 * exist there): the connection is closed [MQTT-4.8.0-1], as for any
 * protocol violation. So the cap must stay above anything a well-behaved
 * Flotilla client sends, or it reconnects and resends into the same wall:
 * device messages have lower per-topic caps (payload-limits.ts) that
 * acknowledge and drop instead.
 *
 * Aedes reads with `conn.read()` on 'readable' (lib/client.js), and that is
 * the method wrapped, on this one connection object.
 */
import type { Duplex } from 'node:stream';

/** The fixed header's length bytes: a variable byte integer of at most 4 bytes (MQTT 3.1.1 §2.2.3). */
const MAX_LENGTH_BYTES = 4;

/** One per broker, shared by its connections. */
export interface PacketLimit {
  /** Most bytes in one packet, fixed header included. */
  maxBytes: number;
  /** Most bytes in the connection's first packet, its CONNECT. */
  maxConnectBytes: number;
  /** Called once when `conn` is closed for a packet over the cap. */
  onRefused(conn: Duplex, info: { bytes: number; maxBytes: number; first: boolean }): void;
}

/**
 * Follows packet boundaries across chunks. `scan` returns the size of the
 * first packet over its cap that begins in the chunk, or undefined.
 */
export class PacketScanner {
  /** Body bytes of the current packet still to pass. */
  private skip = 0;
  /** Where in a fixed header we are: -1 waiting for the type byte, 0–3 length bytes read. */
  private lengthBytes = -1;
  private length = 0;
  private multiplier = 1;
  private packets = 0;
  /** Stopped following: a malformed length (the parser will close the connection) or a packet over the cap. */
  stopped = false;

  constructor(
    private readonly maxBytes: number,
    private readonly maxFirstBytes: number,
  ) {}

  scan(chunk: Uint8Array): { bytes: number; first: boolean } | undefined {
    let i = 0;
    while (i < chunk.length && !this.stopped) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        i += n;
        this.skip -= n;
        continue;
      }
      if (this.lengthBytes < 0) {
        i++; // the packet type and flags
        this.lengthBytes = 0;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      const byte = chunk[i++] as number;
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (byte & 0x80) {
        if (this.lengthBytes >= MAX_LENGTH_BYTES) this.stopped = true;
        continue;
      }
      const bytes = 1 + this.lengthBytes + this.length;
      const first = this.packets === 0;
      this.packets++;
      if (bytes > (first ? this.maxFirstBytes : this.maxBytes)) return { bytes, first };
      this.skip = this.length;
      this.lengthBytes = -1;
    }
    return undefined;
  }
}

/** A capped connection's scanner, its own read and its broker's limit, found by limitedRead. */
interface Capped {
  scanner: PacketScanner;
  read: Duplex['read'];
  limit: PacketLimit;
}

/**
 * Where a capped connection keeps its Capped. The one reading function
 * finds its state here rather than in a closure made per connection, which
 * would cost a few hundred bytes of heap per idle device.
 */
const CAPPED = Symbol('flotilla.packetLimit');
type CappedConn = Duplex & { [CAPPED]: Capped };

/** Caps the size of the packets Aedes reads from `conn` (call before `aedes.handle(conn)`). */
export function limitPacketSize(conn: Duplex, limit: PacketLimit): void {
  (conn as CappedConn)[CAPPED] = { scanner: new PacketScanner(limit.maxBytes, limit.maxConnectBytes), read: conn.read, limit };
  conn.read = limitedRead;
}

function limitedRead(this: CappedConn, size?: number): unknown {
  const { scanner, read, limit } = this[CAPPED];
  const chunk: unknown = read.call(this, size);
  if (scanner.stopped || !(chunk instanceof Uint8Array)) return chunk;
  const over = scanner.scan(chunk);
  if (!over) return chunk;
  scanner.stopped = true;
  limit.onRefused(this, { bytes: over.bytes, maxBytes: over.first ? limit.maxConnectBytes : limit.maxBytes, first: over.first });
  this.destroy();
  // Nothing of this chunk reaches the parser: the connection is gone.
  return null;
}
