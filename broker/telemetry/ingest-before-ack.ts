/**
 * Telemetry is stored before the device hears PUBACK.
 *
 * Aedes 1.2 writes a QoS 1 PUBACK before it publishes the message (and so
 * before the `published` hook runs: lib/handlers/publish.js), so ingest from
 * that hook left a window of one group commit (20–200 ms) in which a device
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
 * subscriber could read it either), counted as invalid and logged, at most
 * once per device and channel per INVALID_WARNING_WINDOW_MS.
 */
import type { AedesOptions, PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import type { Topics } from '../../shared/index.js';
import { decodeTelemetryPayload, isEncodedTelemetry } from '../../shared/telemetry-encoding.js';
import { DROPPED_TOPIC } from '../mqtt/payload-limits.js';
import { isTelemetryChannel, type TelemetryChannel, type TelemetryIngest } from './ingest.js';

type AuthorizePublish = NonNullable<AedesOptions['authorizePublish']>;

/** At most one warning per device and channel in this window; the rest are counted into the next. */
export const INVALID_WARNING_WINDOW_MS = 10_000;

export interface IngestBeforeAckOptions {
  /** Where undecodable payloads are reported (default: nowhere). */
  logger?: Logger;
  now?: () => number;
}

export function ingestBeforeAck(
  authorize: AuthorizePublish,
  topics: Topics,
  ingest: TelemetryIngest,
  options: IngestBeforeAckOptions = {},
): AuthorizePublish {
  const refuse = undecodableReporter(ingest, options);
  return (client, packet, done) => {
    authorize(client, packet, (err) => {
      if (err) return done(err);
      const parsed = client ? topics.parse(packet.topic) : undefined;
      if (parsed?.kind !== 'device' || !isTelemetryChannel(parsed.channel)) return done(null);
      if (isEncodedTelemetry(packet.payload as Buffer)) {
        try {
          packet.payload = decodeTelemetryPayload(packet.payload as Buffer);
        } catch (decodeErr) {
          refuse(packet, parsed.deviceId, parsed.channel, (decodeErr as Error).message);
          return done(null);
        }
      }
      if (packet.qos === 0) {
        ingest.accept(parsed.deviceId, parsed.channel, packet.payload, () => undefined);
        return done(null);
      }
      ingest.accept(parsed.deviceId, parsed.channel, packet.payload, () => done(null), { durable: true });
    });
  };
}

/** Drops an undecodable packet (acknowledged, relayed nowhere), counts it as invalid and says so, rate-limited per device and channel. */
function undecodableReporter(ingest: TelemetryIngest, { logger, now = Date.now }: IngestBeforeAckOptions) {
  const log = logger?.child({ component: 'ingest' });
  const lastWarning = new Map<string, { at: number; suppressed: number }>();
  return (packet: PublishPacket, device: string, channel: TelemetryChannel, reason: string): void => {
    ingest.counters.invalid++;
    const bytes = packet.payload.length;
    packet.topic = DROPPED_TOPIC;
    packet.payload = Buffer.alloc(0);
    packet.retain = false;
    if (!log) return;
    const key = `${device}/${channel}`;
    const at = now();
    const last = lastWarning.get(key);
    if (last && at - last.at < INVALID_WARNING_WINDOW_MS) {
      last.suppressed++;
      return;
    }
    // One entry per device and channel that ever sent a bad payload: bounded by the fleet, like ingest's own.
    lastWarning.set(key, { at, suppressed: 0 });
    log.warn(
      { deviceId: device, channel, reason, bytes, alsoDroppedBefore: last?.suppressed ?? 0 },
      `undecodable ${channel} message dropped`,
    );
  };
}
