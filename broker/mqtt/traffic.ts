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

  private readonly prefix: string;

  constructor(topics: Topics) {
    this.prefix = `${topics.root}/`;
  }

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

  /**
   * `{root}/devices/{id}/{channel}` and `{root}/api/{id}/{channel}` by their
   * levels, without Topics.parse's id validation: this runs twice per message,
   * and a counter need not tell a malformed id from a valid one.
   */
  private channel(topic: string): TrafficChannel {
    if (topic.startsWith('$SYS/')) return 'sys';
    const root = this.prefix;
    if (!topic.startsWith(root)) return 'other';
    const kindEnd = topic.indexOf('/', root.length);
    const idEnd = kindEnd < 0 ? -1 : topic.indexOf('/', kindEnd + 1);
    if (idEnd <= kindEnd + 1 || topic.indexOf('/', idEnd + 1) >= 0) return 'other';
    const kind = topic.slice(root.length, kindEnd);
    const channel = topic.slice(idEnd + 1);
    if (kind === 'devices' && DEVICE_SET.has(channel)) return channel as TrafficChannel;
    if (kind === 'api' && API_SET.has(channel)) return channel as TrafficChannel;
    return 'other';
  }
}

const DEVICE_SET: ReadonlySet<string> = new Set(DEVICE_CHANNELS);
const API_SET: ReadonlySet<string> = new Set(API_CHANNELS);

function zeroes(): TrafficCounts {
  return Object.fromEntries(TRAFFIC_CHANNELS.map((c) => [c, 0])) as TrafficCounts;
}
