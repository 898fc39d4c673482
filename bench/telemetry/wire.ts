/**
 * A minimal MQTT 3.1.1 client for load generation: CONNECT (a clean session,
 * or a persistent one with a will and a keepalive, as the agent connects),
 * PUBLISH at QoS 1 counting PUBACKs, SUBSCRIBE at QoS 1 acknowledging every
 * message received, PINGREQ every keepalive. Nothing else: no reconnect, no
 * retransmission, no QoS 2.
 *
 * Why not mqtt.js: on this 2-core machine one mqtt.js QoS 1 publish costs
 * about 50 µs of CPU (measured while writing this benchmark), so simulated
 * devices on mqtt.js saturate their own core below 20k msg/s and the
 * benchmark would measure its generator. Packets here are encoded into one
 * buffer each and written once per event-loop turn.
 *
 * Invariant: packet ids cycle through 1..65535; callers keep fewer than that
 * in flight (the generator's window is a few per device), so an id is never
 * reused while its PUBACK is outstanding [MQTT-2.3.1-2].
 */
import { connect, type Socket } from 'node:net';

const CONNECT = 1;
const CONNACK = 2;
const PUBLISH = 3;
const PUBACK = 4;
const SUBACK = 9;
const PINGREQ = 12;

export interface WireOptions {
  host: string;
  port: number;
  clientId: string;
  /** Called with the topic and payload of every message received (QoS 1 ones are acknowledged after). */
  onMessage?: (topic: string, payload: Buffer) => void;
  /** Called once per chunk read, with the number of PUBACKs in it. */
  onAcks?: (count: number) => void;
  /** A persistent session (clean session 0), as the agent asks for: the broker keeps its subscriptions and queues QoS 1 for it. */
  persistent?: boolean;
  /** Keep alive in seconds, with a PINGREQ sent every this many (0 or absent: off). */
  keepaliveSeconds?: number;
  /** The will the broker publishes if the connection drops without a DISCONNECT, at QoS 1. */
  will?: { topic: string; payload: string; retain: boolean };
}

export class WireClient {
  /** QoS 1 publishes without their PUBACK yet. */
  inFlight = 0;
  sent = 0;
  acked = 0;
  private nextId = 1;
  private unread: Buffer = Buffer.alloc(0);
  private outbox: Buffer[] = [];
  private flushScheduled = false;
  private subscribed: (() => void) | undefined;
  private closed = false;
  private pinger: NodeJS.Timeout | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly options: WireOptions,
  ) {}

  static async connect(options: WireOptions): Promise<WireClient> {
    const socket = connect({ host: options.host, port: options.port, noDelay: true });
    const client = new WireClient(socket, options);
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(new Error(`${options.clientId}: ${err.message}`));
      socket.once('error', fail);
      socket.once('close', () => fail(new Error('connection closed before CONNACK')));
      client.onConnack = (code) => {
        socket.off('error', fail);
        socket.removeAllListeners('close');
        if (code === 0) resolve();
        else reject(new Error(`${options.clientId}: CONNACK return code ${code}`));
      };
      socket.on('data', (chunk) => client.read(chunk));
      socket.write(connectPacket(options));
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      client.closed = true;
      clearInterval(client.pinger);
    });
    const keepalive = options.keepaliveSeconds ?? 0;
    if (keepalive > 0) {
      client.pinger = setInterval(() => client.queue(Buffer.from([PINGREQ << 4, 0])), keepalive * 1000);
      client.pinger.unref();
    }
    return client;
  }

  get open(): boolean {
    return !this.closed;
  }

  /** Queues a QoS 1 PUBLISH; the bytes leave at the end of this event-loop turn, with everything else queued in it. */
  publish(topic: Buffer, payload: string, retain = false): void {
    const id = this.nextId;
    this.nextId = id === 0xffff ? 1 : id + 1;
    this.inFlight++;
    this.sent++;
    this.queue(publishPacket(topic, id, payload, retain));
  }

  /** One SUBSCRIBE at QoS 1 for all the filters; resolves on its SUBACK. */
  subscribe(filters: readonly string[]): Promise<void> {
    return new Promise((resolve) => {
      this.subscribed = resolve;
      const parts = [Buffer.from([0, 1])];
      for (const filter of filters) {
        const topic = Buffer.from(filter);
        const length = Buffer.alloc(2);
        length.writeUInt16BE(topic.length);
        parts.push(length, topic, Buffer.from([1]));
      }
      // SUBSCRIBE's fixed header flags are 0b0010 [MQTT-3.8.1-1].
      this.queue(withHeader(0x82, Buffer.concat(parts)));
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pinger);
    this.socket.end(Buffer.from([0xe0, 0]));
  }

  private onConnack: (code: number) => void = () => {};

  private queue(packet: Buffer): void {
    this.outbox.push(packet);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      const packets = this.outbox;
      this.outbox = [];
      if (!this.closed) this.socket.write(packets.length === 1 ? packets[0]! : Buffer.concat(packets));
    });
  }

  private read(chunk: Buffer): void {
    let buf = this.unread.length > 0 ? Buffer.concat([this.unread, chunk]) : chunk;
    let acks = 0;
    for (;;) {
      if (buf.length < 2) break;
      let length = 0;
      let multiplier = 1;
      let pos = 1;
      let complete = false;
      while (pos < buf.length && pos <= 4) {
        const byte = buf[pos++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || buf.length < pos + length) break;
      const type = buf[0]! >> 4;
      const body = buf.subarray(pos, pos + length);
      if (type === PUBACK) acks++;
      else if (type === PUBLISH) this.received(buf[0]!, body);
      else if (type === CONNACK) this.onConnack(body[1]!);
      else if (type === SUBACK) this.subscribed?.();
      buf = buf.subarray(pos + length);
    }
    this.unread = buf.length > 0 ? Buffer.from(buf) : Buffer.alloc(0);
    if (acks > 0) {
      this.inFlight -= acks;
      this.acked += acks;
      this.options.onAcks?.(acks);
    }
  }

  private received(header: number, body: Buffer): void {
    const qos = (header >> 1) & 3;
    const topicLength = body.readUInt16BE(0);
    const topic = body.toString('utf8', 2, 2 + topicLength);
    let offset = 2 + topicLength;
    let id = 0;
    if (qos > 0) {
      id = body.readUInt16BE(offset);
      offset += 2;
    }
    this.options.onMessage?.(topic, body.subarray(offset));
    if (qos === 1) this.queue(Buffer.from([PUBACK << 4, 2, id >> 8, id & 0xff]));
  }
}

function connectPacket({ clientId, persistent = false, keepaliveSeconds = 0, will }: WireOptions): Buffer {
  // Connect flags [MQTT-3.1.2]: bit 1 clean session, bit 2 will, bits 3-4 will QoS (1), bit 5 will retain.
  let flags = persistent ? 0 : 0x02;
  if (will) flags |= 0x04 | 0x08 | (will.retain ? 0x20 : 0);
  // "MQTT", level 4, the flags, keep alive (0: off, for a benchmark that is never idle for long).
  const variable = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, keepaliveSeconds >> 8, keepaliveSeconds & 0xff]);
  const fields = [clientId, ...(will ? [will.topic, will.payload] : [])].map((text) => {
    const bytes = Buffer.from(text);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    return Buffer.concat([length, bytes]);
  });
  return withHeader(CONNECT << 4, Buffer.concat([variable, ...fields]));
}

function publishPacket(topic: Buffer, id: number, payload: string, retain: boolean): Buffer {
  const payloadLength = Buffer.byteLength(payload);
  const remaining = 2 + topic.length + 2 + payloadLength;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  const packet = Buffer.allocUnsafe(1 + lengthBytes + remaining);
  packet[0] = (PUBLISH << 4) | 0x02 | (retain ? 0x01 : 0);
  let pos = writeLength(packet, 1, remaining);
  pos = packet.writeUInt16BE(topic.length, pos);
  pos += topic.copy(packet, pos);
  pos = packet.writeUInt16BE(id, pos);
  packet.write(payload, pos);
  return packet;
}

function withHeader(first: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = first;
  const end = writeLength(header, 1, body.length);
  return Buffer.concat([header.subarray(0, end), body]);
}

/** MQTT's variable-length "remaining length"; returns the offset after it. */
function writeLength(buf: Buffer, offset: number, length: number): number {
  let pos = offset;
  let rest = length;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    buf[pos++] = byte;
  } while (rest > 0);
  return pos;
}
