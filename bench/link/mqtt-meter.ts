/**
 * A TCP proxy on loopback between one MQTT client (the agent) and the broker
 * that counts what crosses it, MQTT packet by packet: bytes in each
 * direction, and per packet kind (`PUBLISH logs q1`, `PUBACK`, `PINGREQ`…)
 * packets, bytes (whole packets: fixed header, topic, packet id, payload) and
 * payload bytes. `down()` cuts every connection (RST) and refuses new ones
 * until `up()`, like test/support/fault-proxy.ts, whose counters it extends.
 *
 * Invariants: bytes are forwarded unchanged and in order; a packet is counted
 * once it is whole (a packet cut in half by `down()` is in `bytes` only).
 */
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';

const PACKET_TYPES = [
  'reserved',
  'CONNECT',
  'CONNACK',
  'PUBLISH',
  'PUBACK',
  'PUBREC',
  'PUBREL',
  'PUBCOMP',
  'SUBSCRIBE',
  'SUBACK',
  'UNSUBSCRIBE',
  'UNSUBACK',
  'PINGREQ',
  'PINGRESP',
  'DISCONNECT',
  'AUTH',
] as const;

export interface Tally {
  packets: number;
  /** Whole packets: fixed header, variable header, payload. */
  bytes: number;
  /** PUBLISH payloads only (0 for other kinds). */
  payload: number;
}

export interface DirectionStats {
  /** Bytes forwarded (TCP payload). */
  bytes: number;
  /** By packet kind: `PUBLISH <last topic level> q<QoS>`, or the packet type. */
  kinds: Record<string, Tally>;
}

export interface MeterStats {
  up: DirectionStats;
  down: DirectionStats;
  accepted: number;
  refused: number;
  /** When each CONNACK went down to the client (Date.now()). */
  connacks: number[];
}

export interface MqttMeter {
  readonly port: number;
  readonly url: string;
  /** A deep copy: subtract two with `diffStats`. */
  stats(): MeterStats;
  /** Resets every connection and refuses new ones: the hub is unreachable. */
  down(): void;
  up(): void;
  close(): Promise<void>;
}

/** Reassembles MQTT packets from a byte stream. */
class PacketReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onPacket: (packet: Buffer, headerBytes: number) => void) {}

  push(chunk: Buffer): void {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    for (;;) {
      const header = remainingLength(buf, at);
      if (!header) break;
      const total = 1 + header.bytes + header.length;
      if (buf.length - at < total) break;
      this.onPacket(buf.subarray(at, at + total), 1 + header.bytes);
      at += total;
    }
    this.pending = Buffer.from(buf.subarray(at));
  }
}

/** MQTT's variable-length "remaining length" after the first byte at `at`, or undefined if not all here yet. */
function remainingLength(buf: Buffer, at: number): { length: number; bytes: number } | undefined {
  let value = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    const byte = buf[at + i];
    if (byte === undefined) return undefined;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { length: value, bytes: i };
    multiplier *= 128;
  }
  throw new Error('malformed MQTT remaining length');
}

/** The packet's kind and payload size. */
export function classify(packet: Buffer, headerBytes: number): { kind: string; payload: number } {
  const type = PACKET_TYPES[packet[0]! >> 4] ?? 'reserved';
  if (type !== 'PUBLISH') return { kind: type, payload: 0 };
  const qos = (packet[0]! >> 1) & 3;
  const topicLength = packet.readUInt16BE(headerBytes);
  const topic = packet.subarray(headerBytes + 2, headerBytes + 2 + topicLength).toString();
  const payload = packet.length - headerBytes - 2 - topicLength - (qos > 0 ? 2 : 0);
  return { kind: `PUBLISH ${topic.slice(topic.lastIndexOf('/') + 1)} q${qos}`, payload };
}

function emptyDirection(): DirectionStats {
  return { bytes: 0, kinds: {} };
}

export async function startMqttMeter(options: { targetPort: number; targetHost?: string }): Promise<MqttMeter> {
  const stats: MeterStats = { up: emptyDirection(), down: emptyDirection(), accepted: 0, refused: 0, connacks: [] };
  const sockets = new Set<Socket>();
  let refusing = false;

  const count = (direction: DirectionStats, packet: Buffer, headerBytes: number) => {
    const { kind, payload } = classify(packet, headerBytes);
    direction.kinds[kind] ??= { packets: 0, bytes: 0, payload: 0 };
    const tally = direction.kinds[kind];
    tally.packets++;
    tally.bytes += packet.length;
    tally.payload += payload;
    if (kind === 'CONNACK' && direction === stats.down) stats.connacks.push(Date.now());
  };

  const pipe = (from: Socket, to: Socket, direction: DirectionStats) => {
    const reader = new PacketReader((packet, headerBytes) => count(direction, packet, headerBytes));
    from.on('data', (chunk: Buffer) => {
      if (to.destroyed) return;
      direction.bytes += chunk.length;
      reader.push(chunk);
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('end', () => to.end());
    from.on('close', () => to.destroy());
  };

  const server = createServer({ noDelay: true }, (client) => {
    stats.accepted++;
    client.on('error', () => undefined);
    if (refusing) {
      stats.refused++;
      client.resetAndDestroy();
      return;
    }
    const target = createConnection({ host: options.targetHost ?? '127.0.0.1', port: options.targetPort, noDelay: true });
    target.on('error', () => undefined);
    for (const socket of [client, target]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    }
    pipe(client, target, stats.up);
    pipe(target, client, stats.down);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    stats: () => structuredClone(stats),
    down() {
      refusing = true;
      for (const socket of sockets) {
        if (socket.connecting) socket.destroy();
        else socket.resetAndDestroy();
      }
    },
    up() {
      refusing = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What happened between two snapshots. */
export function diffStats(before: MeterStats, after: MeterStats): MeterStats {
  const direction = (b: DirectionStats, a: DirectionStats): DirectionStats => {
    const kinds: Record<string, Tally> = {};
    for (const [kind, t] of Object.entries(a.kinds)) {
      const was = b.kinds[kind] ?? { packets: 0, bytes: 0, payload: 0 };
      if (t.packets === was.packets && t.bytes === was.bytes) continue;
      kinds[kind] = { packets: t.packets - was.packets, bytes: t.bytes - was.bytes, payload: t.payload - was.payload };
    }
    return { bytes: a.bytes - b.bytes, kinds };
  };
  return {
    up: direction(before.up, after.up),
    down: direction(before.down, after.down),
    accepted: after.accepted - before.accepted,
    refused: after.refused - before.refused,
    connacks: after.connacks.slice(before.connacks.length),
  };
}
