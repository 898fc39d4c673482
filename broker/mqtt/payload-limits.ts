/**
 * Per-topic caps on what clients publish, in Aedes' authorizePublish, after
 * the ACL and before telemetry ingest (broker/telemetry/ingest-before-ack.ts).
 *
 * Each Flotilla channel a client writes has a cap well above what a
 * well-behaved agent or service sends (PAYLOAD_LIMITS says why each), and
 * every other topic has TOPIC_MAX_LENGTH on its name.
 *
 * A message over its cap is acknowledged and dropped, not refused: MQTT 3.1.1
 * can refuse a PUBLISH only by closing the connection [MQTT-3.3.5-2], and the
 * agent's outbox resends a QoS 1 message until it is acknowledged, so a
 * device with one oversized message would reconnect and resend it forever.
 * Dropped, it costs one PUBACK, a log line (at most one a second, with a
 * count of the rest) and a Prometheus counter
 * (flotilla_mqtt_messages_dropped_total). An API request over its cap is
 * answered too (`onRequestTooLarge`): its caller is waiting for a response.
 *
 * Aedes has no "authorized but do not deliver" answer: after authorizePublish
 * it writes the PUBACK, then publishes the packet as it is then. So a dropped
 * message is made harmless in place: its topic becomes DROPPED_TOPIC, which
 * no wildcard matches ([MQTT-4.7.2-1]: `$` topics are not matched by `#` or
 * `+` in the first level) and which the broker never forwards
 * (broker.ts), its payload is emptied and its retain flag cleared (a retained
 * empty payload on the real topic would *delete* the retained message).
 */
import type { AedesOptions, PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import type { DeviceChannel, Topics } from '../../shared/index.js';
import { FRAME_HEADER_BYTES, MAX_DATA_BYTES } from '../../shared/remote/frames.js';

type AuthorizePublish = NonNullable<AedesOptions['authorizePublish']>;

/** The hub's own topics for messages that go nowhere: clients may neither publish nor receive on them, and broker.ts forwards nothing there. */
export const FLOTILLA_INTERNAL_PREFIX = '$flotilla/';
/** Where a message dropped over its cap goes. */
export const DROPPED_TOPIC = `${FLOTILLA_INTERNAL_PREFIX}dropped`;

/** Longest topic name a client may publish to, in characters. Flotilla's are under 200 (root + 63-char id + channel). */
export const TOPIC_MAX_LENGTH = 512;

/**
 * Most levels in a topic (Aedes' `maxTopicLevels`; its default 100 is its
 * router's ceiling). Flotilla's topics have 5 (`flotilla/v1/devices/{id}/state`);
 * the rest leaves room for a deeper topic root and dashboards' own topics.
 */
export const MAX_TOPIC_LEVELS = 16;

const KiB = 1024;

/** Payload caps, in bytes, of the channels clients publish on. */
export const PAYLOAD_LIMITS = {
  // Retained, one per device: `{online, at}` is ~60 bytes.
  status: 4 * KiB,
  // Retained, one per device: ~250 bytes a container, so ~1,000 containers.
  state: 256 * KiB,
  // One event; its message is a Docker error at most, a few KiB.
  events: 64 * KiB,
  // One sample: host figures and ~200 bytes a container.
  metrics: 64 * KiB,
  // One command reply.
  replies: 64 * KiB,
  // A batch: about the agent's logBatchBytes (64 KiB) of lines plus one line
  // (logLineMaxBytes, 16 KiB), up to ~6× as JSON when a line is all control
  // characters (\u0000 escapes): ~480 KiB at the agent's defaults.
  logs: 768 * KiB,
} as const satisfies Partial<Record<DeviceChannel, number>>;

/** An MQTT API request (`…/api/{clientId}/request`): an app spec, like the HTTP API's body (up to 1 MiB there, less the packet's room). */
export const API_REQUEST_LIMIT = 768 * KiB;
/** A remote-access frame (shared/remote/frames.ts): one data chunk and its header. */
export const SESSION_FRAME_LIMIT = FRAME_HEADER_BYTES + MAX_DATA_BYTES;

export type DropReason = 'payload_too_large' | 'topic_too_long';

export interface DropCount {
  /** A Flotilla channel (`state`, `logs`, `request`…) or `other`. */
  channel: string;
  reason: DropReason;
  count: number;
}

export interface PayloadLimits {
  authorizePublish: AuthorizePublish;
  /** Messages dropped since start, by channel and reason (for Prometheus). */
  dropped(): DropCount[];
}

export interface PayloadLimitOptions {
  topics: Topics;
  logger: Logger;
  /** How often at most a drop is logged (default 1 s); the others are counted into the next line. */
  logIntervalMs?: number;
  now?: () => number;
  /**
   * Called with an API request over API_REQUEST_LIMIT before it is dropped, so the caller waiting on
   * its correlation id is answered with the limit instead of waiting for its own timeout.
   */
  onRequestTooLarge?: (clientId: string, payload: Buffer, limit: number) => void;
}

/** Wraps `authorize` (the ACL): what it allows is then checked against the caps. */
export function limitPayloads(authorize: AuthorizePublish, options: PayloadLimitOptions): PayloadLimits {
  const log = options.logger.child({ component: 'mqtt-limits' });
  const now = options.now ?? Date.now;
  const logIntervalMs = options.logIntervalMs ?? 1_000;
  const counts = new Map<string, DropCount>();
  let lastLog = Number.NEGATIVE_INFINITY;
  let suppressed = 0;

  const drop = (packet: PublishPacket, clientId: string | undefined, channel: string, reason: DropReason, limit: number) => {
    const key = `${channel}\u0000${reason}`;
    const count = counts.get(key) ?? { channel, reason, count: 0 };
    count.count++;
    counts.set(key, count);
    const at = now();
    if (at - lastLog >= logIntervalMs) {
      lastLog = at;
      log.warn(
        {
          clientId,
          topic: reason === 'topic_too_long' ? `${packet.topic.slice(0, 64)}…` : packet.topic,
          channel,
          reason,
          bytes: reason === 'topic_too_long' ? packet.topic.length : packet.payload.length,
          limit,
          suppressed,
        },
        'MQTT message over its limit acknowledged and dropped',
      );
      suppressed = 0;
    } else {
      suppressed++;
    }
    packet.topic = DROPPED_TOPIC;
    packet.payload = Buffer.alloc(0);
    packet.retain = false;
  };

  return {
    authorizePublish(client, packet, done) {
      authorize(client, packet, (err) => {
        if (err) return done(err);
        // The broker's own wills (client null) are as the client left them; it was checked then.
        if (!client) return done(null);
        const check = limitFor(options.topics, packet.topic);
        if (check.reason) drop(packet, client.id, check.channel, check.reason, check.limit ?? 0);
        else if (check.limit !== undefined && packet.payload.length > check.limit) {
          if (check.channel === 'request') options.onRequestTooLarge?.(client.id, Buffer.from(packet.payload), check.limit);
          drop(packet, client.id, check.channel, 'payload_too_large', check.limit);
        }
        done(null);
      });
    },
    dropped: () => [...counts.values()].map((c) => ({ ...c })),
  };
}

/** The cap that applies to a topic, by its Flotilla channel. */
function limitFor(topics: Topics, topic: string): { channel: string; limit?: number; reason?: DropReason } {
  if (topic.length > TOPIC_MAX_LENGTH) return { channel: 'other', limit: TOPIC_MAX_LENGTH, reason: 'topic_too_long' };
  const parsed = topics.parse(topic);
  if (parsed?.kind === 'device') {
    const limit = (PAYLOAD_LIMITS as Partial<Record<DeviceChannel, number>>)[parsed.channel];
    return limit === undefined ? { channel: parsed.channel } : { channel: parsed.channel, limit };
  }
  if (parsed?.kind === 'api' && parsed.channel === 'request') return { channel: 'request', limit: API_REQUEST_LIMIT };
  if (parsed?.kind === 'session') return { channel: 'session', limit: SESSION_FRAME_LIMIT };
  return { channel: parsed?.channel ?? 'other' };
}
