/**
 * The agent's MQTT link to the hub: online status with a will, the retained
 * desired state in, the retained reported state out.
 *
 * The link never blocks the agent: it connects in the background, and the
 * reconcile loop keeps running what it was told while the hub is away. Only
 * the latest state report is kept while offline (state is retained and
 * whole, so older reports are worthless once a newer one exists); events wait
 * in a bounded queue, metrics are skipped. Reconnects back off with full
 * jitter (reconnect-backoff.ts) over a persistent session.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  DesiredState,
  type DeviceEvent,
  type DeviceState,
  type DeviceStatus,
  decode,
  formatIssues,
  type LogBatch,
  type Metrics,
  type Topics,
} from '../shared/index.js';
import { type BackoffPolicy, DEFAULT_RECONNECT, reconnectDelay } from './reconnect-backoff.js';

/**
 * Events published while the hub is away wait here, oldest dropped first
 * beyond this many (the on-disk outbox is the next step). MQTT.js would
 * otherwise keep every one in memory without bound.
 */
export const MAX_OFFLINE_EVENTS = 1000;

/**
 * Unacknowledged log batches allowed at once. MQTT.js keeps every QoS 1
 * publish in memory until its PUBACK, so without a cap a slow hub would grow
 * the agent's memory; with it, the log pipeline's own bounded buffer absorbs
 * the wait and drops (and counts) when full.
 */
export const MAX_LOG_BATCHES_IN_FLIGHT = 8;

export interface LinkOptions {
  hubUrl: string;
  deviceId: string;
  topics: Topics;
  logger: Logger;
  onDesired: (desired: DesiredState) => void;
  /** Minimum time between two state publications. */
  stateIntervalMs: number;
  /** How the link retries the hub (default: 1 s window doubling to 60 s, full jitter). */
  reconnect?: BackoffPolicy;
}

export class Link {
  private readonly client: MqttClient;
  private readonly log: Logger;
  private pendingState: DeviceState | undefined;
  private lastPublished = '';
  private lastPublishedAt = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private wasConnected = false;
  private logBatchesInFlight = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private failedAttempts = 0;
  private closing = false;
  private readonly offlineEvents: DeviceEvent[] = [];
  private offlineEventsDropped = 0;

  constructor(private readonly options: LinkOptions) {
    const { topics, deviceId } = options;
    this.log = options.logger.child({ component: 'link' });
    const offline: DeviceStatus = { online: false, at: new Date().toISOString() };
    this.client = mqtt.connect(options.hubUrl, {
      clientId: deviceId,
      protocolVersion: 4,
      // A persistent session: what the broker holds for this device (QoS 1
      // desired-state updates) waits for it across a dropped link.
      clean: false,
      // 30 s keeps a cellular NAT mapping alive (carriers drop idle ones after
      // 60 s or more) and finds a half-open link within 45 s, for ~300 KB a day.
      keepalive: 30,
      connectTimeout: 10_000,
      // The reconnect loop is ours (scheduleReconnect): backoff with full jitter.
      reconnectPeriod: 0,
      // Nothing piles up in MQTT.js while offline: QoS 0 (metrics) is simply not sent.
      queueQoSZero: false,
      // A dead device must show offline: the broker publishes this when the
      // connection drops without a DISCONNECT [MQTT-3.1.2-8].
      will: { topic: topics.device(deviceId, 'status'), payload: Buffer.from(JSON.stringify(offline)), qos: 1, retain: true },
    });
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => {
      // One line per outage, not one per reconnect attempt.
      if (this.wasConnected) this.log.warn({ hubUrl: options.hubUrl }, 'disconnected from hub; apps keep running, reconnecting');
      this.wasConnected = false;
      this.scheduleReconnect();
    });
    this.client.on('error', (err) => this.log.warn({ hubUrl: options.hubUrl, err: err.message }, 'hub unreachable; retrying'));
    this.client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Queues a state report; publishes at most one per interval, always the newest. */
  publishState(state: DeviceState): void {
    this.pendingState = state;
    this.scheduleFlush();
  }

  /**
   * Publishes an event at QoS 1. While offline, MQTT.js holds it in memory
   * (a bounded on-disk outbox is future work), so events are best effort today.
   */
  publishEvent(event: DeviceEvent): void {
    if (!this.client.connected) {
      this.offlineEvents.push(event);
      if (this.offlineEvents.length > MAX_OFFLINE_EVENTS) {
        this.offlineEvents.shift();
        this.offlineEventsDropped++;
      }
      return;
    }
    this.client.publish(this.options.topics.device(this.options.deviceId, 'events'), JSON.stringify(event), { qos: 1 });
  }

  /** Whether `publishLogs` would take a batch now. */
  get canSendLogs(): boolean {
    return this.client.connected && this.logBatchesInFlight < MAX_LOG_BATCHES_IN_FLIGHT;
  }

  /**
   * Publishes a log batch at QoS 1. Returns false, sending nothing, when the
   * link is down or too many batches await their acknowledgement: the caller
   * keeps (or drops and counts) the lines. Until the outbox exists, nothing
   * is stored for a link that is down.
   */
  publishLogs(batch: LogBatch): boolean {
    if (!this.canSendLogs) return false;
    this.logBatchesInFlight++;
    this.client.publish(this.options.topics.device(this.options.deviceId, 'logs'), JSON.stringify(batch), { qos: 1 }, () => {
      this.logBatchesInFlight--;
    });
    return true;
  }

  /**
   * Publishes a metric sample at QoS 0: the next one supersedes it, so a lost
   * sample is a gap in a graph, not lost information. Returns false when down.
   */
  publishMetrics(sample: Metrics): boolean {
    if (!this.client.connected) return false;
    this.client.publish(this.options.topics.device(this.options.deviceId, 'metrics'), JSON.stringify(sample), { qos: 0 });
    return true;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.flushTimer);
    if (this.client.connected) {
      this.flushNow();
      const status: DeviceStatus = { online: false, at: new Date().toISOString() };
      // A link that died silently still looks connected: never wait long for
      // the acknowledgement. If it does not come, the broker publishes the will.
      const published = this.client
        .publishAsync(this.options.topics.device(this.options.deviceId, 'status'), JSON.stringify(status), { qos: 1, retain: true })
        .then(() => true)
        .catch(() => false);
      const acknowledged = await Promise.race([
        published,
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 2_000).unref()),
      ]);
      if (!acknowledged) return void (await this.client.endAsync(true));
    }
    await this.client.endAsync(!this.client.connected);
  }

  /** The next attempt after a lost or failed connection, at a random point of a window that doubles per failure. */
  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    const delayMs = reconnectDelay(this.failedAttempts++, this.options.reconnect ?? DEFAULT_RECONNECT);
    this.log.debug({ delayMs, attempt: this.failedAttempts }, 'reconnecting to hub');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closing) this.client.reconnect();
    }, delayMs);
  }

  private onConnect(): void {
    const { topics, deviceId } = this.options;
    this.wasConnected = true;
    this.failedAttempts = 0;
    this.log.info({ hubUrl: this.options.hubUrl }, 'connected to hub');
    const status: DeviceStatus = { online: true, at: new Date().toISOString() };
    this.client.publish(topics.device(deviceId, 'status'), JSON.stringify(status), { qos: 1, retain: true });
    this.client.subscribe(topics.device(deviceId, 'desired'), { qos: 1 }, (err) => {
      if (err) this.log.error({ err: err.message }, 'subscribing to desired state failed');
    });
    // The hub may have lost what we last reported (broker restart): report again.
    this.lastPublished = '';
    this.scheduleFlush();
    // What happened while the hub was away, in order.
    if (this.offlineEventsDropped > 0) {
      this.log.warn(
        { dropped: this.offlineEventsDropped, kept: MAX_OFFLINE_EVENTS },
        'events dropped while the hub was away (oldest first)',
      );
      this.offlineEventsDropped = 0;
    }
    for (const event of this.offlineEvents.splice(0)) this.publishEvent(event);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = this.options.topics.parse(topic);
    if (parsed?.kind !== 'device' || parsed.channel !== 'desired' || parsed.deviceId !== this.options.deviceId) {
      this.log.debug({ topic }, 'ignoring message on unexpected topic');
      return;
    }
    if (payload.length === 0) return;
    const result = decode(DesiredState, payload);
    if (!result.ok) {
      this.log.warn({ topic, reason: formatIssues(result.issues) }, 'invalid desired state dropped');
      return;
    }
    if (result.value.deviceId !== this.options.deviceId) {
      this.log.warn({ topic, deviceId: result.value.deviceId }, 'desired state for another device dropped');
      return;
    }
    try {
      this.options.onDesired(result.value);
    } catch (err) {
      this.log.error({ err }, 'handling desired state failed');
    }
  }

  private scheduleFlush(): void {
    if (this.flushTimer || !this.client.connected) return;
    const wait = Math.max(0, this.lastPublishedAt + this.options.stateIntervalMs - Date.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flushNow();
    }, wait);
  }

  private flushNow(): void {
    const state = this.pendingState;
    if (!state || !this.client.connected) return;
    const { reportedAt: _ignored, ...content } = state;
    const fingerprint = JSON.stringify(content);
    if (fingerprint === this.lastPublished) return;
    this.lastPublished = fingerprint;
    this.lastPublishedAt = Date.now();
    this.client.publish(this.options.topics.device(this.options.deviceId, 'state'), JSON.stringify(state), { qos: 1, retain: true });
  }
}
