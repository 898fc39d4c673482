/**
 * Telemetry is stored before the device hears PUBACK.
 *
 * Aedes 1.2 writes a QoS 1 PUBACK before it publishes the message (and so
 * before the `published` hook runs: lib/handlers/publish.js), so ingest from
 * that hook left a window of one group commit (up to 200 ms) in which a device
 * had its acknowledgement and deleted the message from its outbox, while
 * the hub held it only in memory: a hub killed then lost it. Publish
 * authorization runs before the PUBACK, so ingest queues the message there
 * and lets Aedes go on (PUBACK, relay to dashboards) only after the commit.
 * The commit is a WAL append, so a killed process keeps it.
 *
 * What it costs: a device's next socket read waits for the commit; the
 * packets of one read are handled together, so with the agent's window of
 * 8 unacknowledged messages a device gets about 8 per commit.
 *
 * QoS 0 (live metric samples) is not acknowledged, so it is not held. An
 * invalid message is dropped from ingest (and logged) but still relayed:
 * MQTT 3.1.1 cannot refuse one PUBLISH without closing the connection, and
 * one bad message is no reason to cut a device off.
 *
 * An encoded payload (shared/telemetry-encoding.ts) is decoded first, and
 * the packet's payload replaced by the plain JSON: ingest, the relay to
 * dashboards and every other subscriber see exactly what an agent sending
 * plain JSON would have sent. One that cannot be decoded is acknowledged and
 * dropped (payload-limits.ts' dropped topic: relayed nowhere, since no
 * subscriber could read it either), and reported by ingest like a message
 * that fails its schema (TelemetryIngest.reportInvalid).
 *
 * A metrics sample may arrive as a delta against the device's newest full
 * live (QoS 0) sample that arrived encoded; that one is kept here, one per device (about
 * 1.4 KB for three containers), and is what the delta is restored against.
 * A delta whose base is not the one kept (a lost QoS 0 base, or this hub
 * started after it) is dropped like an undecodable payload but logged at
 * debug: the device sends a full sample within METRIC_BASE_EVERY samples,
 * and after a hub restart every device would otherwise say so once.
 */
import type { AedesOptions, PublishPacket } from 'aedes';
import type { Topics } from '../../shared/index.js';
import {
  DEFLATE_DICT_1_TAG,
  decodeTelemetryPayload,
  isEncodedTelemetry,
  MAX_BASE_BYTES,
  TelemetryBaseMissingError,
} from '../../shared/telemetry-encoding.js';
import { DROPPED_TOPIC } from '../mqtt/payload-limits.js';
import { isTelemetryChannel, type TelemetryIngest } from './ingest.js';

type AuthorizePublish = NonNullable<AedesOptions['authorizePublish']>;

export function ingestBeforeAck(authorize: AuthorizePublish, topics: Topics, ingest: TelemetryIngest): AuthorizePublish {
  /** Per device, the newest full metrics sample that arrived encoded: what its deltas are made against. */
  const bases = new Map<string, { seq: number; plain: Buffer }>();
  return (client, packet, done) => {
    authorize(client, packet, (err) => {
      if (err) return done(err);
      const parsed = client ? topics.parse(packet.topic) : undefined;
      if (parsed?.kind !== 'device' || !isTelemetryChannel(parsed.channel)) return done(null);
      const payload = packet.payload as Buffer;
      if (isEncodedTelemetry(payload)) {
        const { deviceId, channel } = parsed;
        try {
          packet.payload = decodeTelemetryPayload(payload, (seq) => {
            const base = channel === 'metrics' ? bases.get(deviceId) : undefined;
            return base?.seq === seq ? base.plain : undefined;
          });
        } catch (decodeErr) {
          ingest.reportInvalid(deviceId, channel, (decodeErr as Error).message, {
            kind: 'undecodable',
            bytes: payload.length,
            expected: decodeErr instanceof TelemetryBaseMissingError,
          });
          dropUnread(packet);
          return done(null);
        }
        // Only live samples (QoS 0) are bases: the outbox's late ones must not replace the one the live deltas name.
        if (channel === 'metrics' && packet.qos === 0 && payload[0] === DEFLATE_DICT_1_TAG)
          keepBase(bases, deviceId, packet.payload as Buffer);
      }
      if (packet.qos === 0) {
        ingest.accept(parsed.deviceId, parsed.channel, packet.payload, () => undefined);
        return done(null);
      }
      // Refused (the store is out of reach): Aedes closes the connection unacknowledged, and the device sends it again.
      ingest.accept(parsed.deviceId, parsed.channel, packet.payload, (err) => done(err ?? null), { durable: true });
    });
  };
}

/** Keeps a full sample as the device's base if its seq can be read (a sample without one is invalid and no delta can name it). */
function keepBase(bases: Map<string, { seq: number; plain: Buffer }>, deviceId: string, plain: Buffer): void {
  if (plain.length > MAX_BASE_BYTES) return;
  const seq = /^\{"seq":(\d+)[,}]/.exec(plain.toString('latin1', 0, 32))?.[1];
  if (seq !== undefined) bases.set(deviceId, { seq: Number(seq), plain });
}

/** Acknowledged, but relayed nowhere: no subscriber could read it either. */
function dropUnread(packet: PublishPacket): void {
  packet.topic = DROPPED_TOPIC;
  packet.payload = Buffer.alloc(0);
  packet.retain = false;
}
