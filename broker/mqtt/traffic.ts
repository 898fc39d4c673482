/**
 * Messages through the broker, counted per channel: what clients published
 * to it (in) and what it delivered to subscribers (out). Plain numbers, read
 * by the Prometheus exporter at scrape time.
 *
 * The label set is fixed (the device and API channels, `sys`, `other`), so the
 * counters stay bounded whatever topics clients invent.
 */
import type { AedesPublishPacket, Client, PublishPacket } from 'aedes';
import { API_CHANNELS, DEVICE_CHANNELS, type Topics } from '../../shared/index.js';

export const TRAFFIC_CHANNELS = [...DEVICE_CHANNELS, ...API_CHANNELS, 'sys', 'other'] as const;
export type TrafficChannel = (typeof TRAFFIC_CHANNELS)[number];

export type TrafficCounts = Record<TrafficChannel, number>;

export class BrokerTraffic {
  private readonly inCounts: TrafficCounts = zeroes();
  private readonly outCounts: TrafficCounts = zeroes();

  constructor(private readonly topics: Topics) {}

  /** Aedes `publish` event: a client's message was accepted. The broker's own ($SYS heartbeats, client null) are not counted. */
  readonly onPublish = (packet: AedesPublishPacket | PublishPacket, client: Client | null): void => {
    if (client) this.inCounts[this.channel(packet.topic)] += 1;
  };

  /**
   * Aedes `authorizeForward`: called once per delivery of a message to one
   * subscriber (live, retained on subscribe, or queued for a persistent
   * session), just before it is written. Returns the packet unchanged.
   */
  readonly onForward = (_client: Client, packet: AedesPublishPacket): AedesPublishPacket => {
    this.outCounts[this.channel(packet.topic)] += 1;
    return packet;
  };

  received(): Readonly<TrafficCounts> {
    return this.inCounts;
  }

  sent(): Readonly<TrafficCounts> {
    return this.outCounts;
  }

  private channel(topic: string): TrafficChannel {
    if (topic.startsWith('$SYS/')) return 'sys';
    return this.topics.parse(topic)?.channel ?? 'other';
  }
}

function zeroes(): TrafficCounts {
  return Object.fromEntries(TRAFFIC_CHANNELS.map((c) => [c, 0])) as TrafficCounts;
}
