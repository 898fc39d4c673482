/**
 * Live follow on hub replicas: a `logs -f`, `events -f` or console stream on
 * one replica hears the lines and events committed by every replica, whichever
 * one the device is connected to. Loaded only for a replica (a single hub's
 * follow streams hear its own ingest: live-records.ts).
 *
 * The records themselves are relayed, and only to replicas that asked:
 *
 * - Each replica announces the keys its follow streams hold (a device's logs,
 *   a device's events, every device's events, every device's metrics while
 *   the fleet page is followed: follow-interest.ts) on
 *   CONTROL_TOPIC, in the shared emitter every replica hears, whenever the set
 *   changes and every RENEW_MS while it is not empty; a set not renewed within
 *   LEASE_MS is dropped (its replica died).
 * - A replica sends the records it committed that a key covers to that key's
 *   replicas, each on its own inbox topic (so Redis delivers them to it
 *   alone), in commit order, gathered over RELAY_DELAY_MS: commits come every
 *   few ms under load, and one message per commit would cost each a Redis
 *   command and a decode on the receiving replica (a fleet page's samples:
 *   about two per message at 10,000 devices). A fleet nobody follows costs no
 *   relaying, and the committing replica does not even gather its log records.
 * - A replica that hears a set registers it, then acknowledges it on the
 *   announcer's inbox. A new follow stream waits for every live replica's
 *   acknowledgement (at most ACK_TIMEOUT_MS) before its backlog is read: a
 *   commit a replica finished before it registered the key is in that
 *   backlog, and every later one is relayed, so nothing falls between.
 *   Replicas are known by their brokers' heartbeats, and a starting one's
 *   hello is answered by every replica, so it knows them all at once.
 * - A replica that hears someone follow a device's logs asks the device for
 *   its live window (link-tuning.ts) as if it followed too: only the replica
 *   the device is connected to sends it, and a device that moves finds it on
 *   its new replica.
 *
 * The inbox and control topics are under `$SYS/`, which no client may publish.
 * Records relayed by another replica are never relayed again.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { EventRecord, LogRecord, MetricsSample } from '../../shared/index.js';
import type { HubBus } from '../mqtt/hub-bus.js';
import { type FollowChannel, type FollowKey, followKey, isFollowKey, LocalInterests, RemoteInterests } from './follow-interest.js';
import type { TelemetryIngest } from './ingest.js';
import type { LiveRecords } from './live-records.js';

export const CONTROL_TOPIC = '$SYS/flotilla/follow';
const inboxTopic = (replica: string) => `${CONTROL_TOPIC}/${replica}`;
const HEARTBEATS = ['$SYS/+/heartbeat', '$SYS/+/birth'];

/** How often a replica with followers says so again. */
export const RENEW_MS = 10_000;
/** A replica's set not renewed within this is dropped. */
export const LEASE_MS = 3 * RENEW_MS;
/** A replica not heard within this (its broker heartbeats every 5 s) is not waited for. */
const PEER_STALE_MS = 20_000;
/** A new follow stream waits at most this for the other replicas' acknowledgements. */
export const ACK_TIMEOUT_MS = 3_000;
/** How long committed records wait to go out with the next commits' (a fifth of an agent's live log window). */
export const RELAY_DELAY_MS = 50;
/** Records in one relayed message at most: more go out at once. */
const RELAY_MAX_RECORDS = 1_000;

type Control = { kind: 'interest'; replica: string; seq: number; keys: FollowKey[] } | { kind: 'hello'; replica: string };
type InboxMessage =
  | { kind: 'ack'; replica: string; seq: number }
  /** Records of one channel, in commit order. */
  | { kind: FollowChannel; replica: string; records: Committed[] };

type Committed = LogRecord | EventRecord | MetricsSample;

export interface FollowAcrossReplicasOptions {
  bus: HubBus;
  /** This replica's broker id (Aedes' `id`, the one its heartbeats carry). */
  replica: string;
  ingest: Pick<TelemetryIngest, 'onLogs' | 'onEvents' | 'onMetrics'>;
  /** Asks a device connected here for its live log window; the returned function ends the ask (link-tuning.ts). */
  following: (device: string) => () => void;
  logger: Logger;
  nowMs?: () => number;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  timer: NodeJS.Timeout;
}

export class FollowAcrossReplicas implements LiveRecords {
  readonly acrossReplicas = true;
  private readonly local = new LocalInterests();
  private readonly remote = new RemoteInterests(LEASE_MS);
  /** Records other replicas committed and relayed here. */
  private readonly relayed = new EventEmitter();
  private readonly peers = new Map<string, number>();
  private readonly acked = new Map<string, number>();
  private readonly waiters = new Set<Waiter>();
  private readonly gathering: Partial<Record<FollowChannel, () => void>> = {};
  private readonly liveWindows = new Map<string, () => void>();
  /** Records waiting to be relayed, by replica and channel, in commit order. */
  private readonly outbox = new Map<string, { replica: string; channel: FollowChannel; records: Committed[] }>();
  private outboxTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: FollowAcrossReplicasOptions) {
    this.log = options.logger.child({ component: 'follow-across-replicas' });
    this.now = options.nowMs ?? Date.now;
    // Every follow stream listens here; the default limit of 10 is for leak detection.
    this.relayed.setMaxListeners(0);
  }

  /** Listens to the other replicas and asks them what they follow. */
  async attach(): Promise<void> {
    const { bus, replica } = this.options;
    await bus.subscribe([CONTROL_TOPIC, inboxTopic(replica), ...HEARTBEATS], (topic, payload) => {
      try {
        this.heard(topic, payload);
      } catch (err) {
        this.log.warn({ topic, err }, 'a follow message from another replica was not understood; ignored');
      }
    });
    this.timer = setInterval(() => this.renew(), RENEW_MS);
    this.timer.unref();
    this.publish(CONTROL_TOPIC, { kind: 'hello', replica });
  }

  followLogs(device: string, listener: (records: LogRecord[]) => void): Promise<() => void> {
    return this.follow('logs', device, this.options.ingest.onLogs(listener), listener as (records: unknown[]) => void);
  }

  followEvents(device: string | undefined, listener: (records: EventRecord[]) => void): Promise<() => void> {
    return this.follow('events', device, this.options.ingest.onEvents(listener), listener as (records: unknown[]) => void);
  }

  /**
   * Every metrics sample other replicas commit from the moment this resolves
   * (this replica's own reach the ingest's listeners as always), for the
   * fleet's sparklines while someone watches them.
   */
  followMetrics(listener: (samples: MetricsSample[]) => void): Promise<() => void> {
    return this.follow('metrics', undefined, () => undefined, listener as (records: unknown[]) => void);
  }

  /** Sends what waits to be relayed, says this replica follows nothing any more, and stops relaying. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sendAll();
    clearInterval(this.timer);
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
    this.waiters.clear();
    for (const stop of Object.values(this.gathering)) stop?.();
    for (const end of this.liveWindows.values()) end();
    this.liveWindows.clear();
    this.relayed.removeAllListeners();
    if (this.local.size > 0) this.publish(CONTROL_TOPIC, { kind: 'interest', replica: this.options.replica, seq: ++this.seq, keys: [] });
  }

  private async follow(
    channel: FollowChannel,
    device: string | undefined,
    stopLocal: () => void,
    listener: (records: unknown[]) => void,
  ): Promise<() => void> {
    this.relayed.on(channel, listener);
    const key = followKey(channel, device);
    if (this.local.add(key)) this.announce();
    // Also when the key was held already: a stream that added it moments ago may still be waiting.
    await this.acknowledged(this.seq);
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      stopLocal();
      this.relayed.off(channel, listener);
      if (this.local.remove(key)) this.announce();
    };
  }

  private heard(topic: string, payload: Buffer): void {
    if (this.closed) return;
    if (topic === CONTROL_TOPIC) return void this.control(JSON.parse(payload.toString('utf8')) as Control);
    if (topic === inboxTopic(this.options.replica)) return void this.inbox(JSON.parse(payload.toString('utf8')) as InboxMessage);
    // A broker's heartbeat or birth: its payload is its id.
    const replica = payload.toString('utf8');
    if (replica === this.options.replica) return;
    const known = this.peers.has(replica);
    this.peers.set(replica, this.now());
    // A replica just started knows nothing of what is followed here.
    if ((!known || topic.endsWith('/birth')) && this.local.size > 0) this.announce();
  }

  private control(message: Control): void {
    const { replica } = message;
    if (typeof replica !== 'string' || replica === this.options.replica) return;
    this.peers.set(replica, this.now());
    if (message.kind === 'hello') {
      // Even an empty set: the new replica learns of this one now, not at its next heartbeat, and waits for it.
      this.announce();
      return;
    }
    if (message.kind !== 'interest' || typeof message.seq !== 'number' || !Array.isArray(message.keys)) return;
    const keys = message.keys.filter(isFollowKey);
    if (this.remote.set(replica, message.seq, keys, this.now())) this.regather();
    // After registering: every commit answered from here on is relayed to it.
    this.publish(inboxTopic(replica), { kind: 'ack', replica: this.options.replica, seq: message.seq });
  }

  private inbox(message: InboxMessage): void {
    if (typeof message.replica !== 'string') return;
    this.peers.set(message.replica, this.now());
    if (message.kind === 'ack') {
      if (typeof message.seq !== 'number') return;
      this.acked.set(message.replica, Math.max(message.seq, this.acked.get(message.replica) ?? 0));
      this.settleWaiters();
    } else if ((message.kind === 'logs' || message.kind === 'events' || message.kind === 'metrics') && Array.isArray(message.records)) {
      const records = (message.records as unknown[]).filter(isRecord);
      if (records.length > 0) this.relayed.emit(message.kind, records);
    }
  }

  /** Gathers committed records only while another replica follows their channel, and keeps live windows for its log followers. */
  private regather(): void {
    const { ingest } = this.options;
    for (const channel of ['logs', 'events', 'metrics'] as const) {
      const wanted = this.remote.anyOn(channel);
      const stop = this.gathering[channel];
      if (wanted && !stop) {
        const relay = (records: Committed[]) => this.relay(channel, records);
        this.gathering[channel] =
          channel === 'logs' ? ingest.onLogs(relay) : channel === 'events' ? ingest.onEvents(relay) : ingest.onMetrics(relay);
      } else if (!wanted && stop) {
        stop();
        delete this.gathering[channel];
      }
    }
    const devices = this.remote.logsDevices();
    for (const [device, end] of this.liveWindows) {
      if (devices.has(device)) continue;
      end();
      this.liveWindows.delete(device);
    }
    for (const device of devices) {
      if (!this.liveWindows.has(device)) this.liveWindows.set(device, this.options.following(device));
    }
  }

  private relay(channel: FollowChannel, records: readonly Committed[]): void {
    for (const [replica, wanted] of this.remote.routes(channel, records)) {
      const key = `${replica}/${channel}`;
      const waiting = this.outbox.get(key);
      if (waiting) waiting.records.push(...wanted);
      else this.outbox.set(key, { replica, channel, records: wanted });
      if ((waiting?.records.length ?? wanted.length) >= RELAY_MAX_RECORDS) this.send(key);
    }
    if (this.outbox.size > 0) this.outboxTimer ??= setTimeout(() => this.sendAll(), RELAY_DELAY_MS);
  }

  private sendAll(): void {
    clearTimeout(this.outboxTimer);
    this.outboxTimer = undefined;
    for (const key of [...this.outbox.keys()]) this.send(key);
  }

  private send(key: string): void {
    const waiting = this.outbox.get(key);
    if (!waiting) return;
    this.outbox.delete(key);
    this.publish(inboxTopic(waiting.replica), { kind: waiting.channel, replica: this.options.replica, records: waiting.records });
  }

  private announce(): void {
    if (this.closed) return;
    this.publish(CONTROL_TOPIC, { kind: 'interest', replica: this.options.replica, seq: ++this.seq, keys: this.local.keys() });
  }

  private renew(): void {
    const nowMs = this.now();
    if (this.remote.expire(nowMs)) this.regather();
    for (const [replica, heardAt] of this.peers) {
      if (nowMs - heardAt > PEER_STALE_MS) {
        this.peers.delete(replica);
        this.acked.delete(replica);
      }
    }
    if (this.local.size > 0) this.announce();
    this.settleWaiters();
  }

  /** Resolves once every live replica has acknowledged announcement `seq` or a later one, or after ACK_TIMEOUT_MS. */
  private acknowledged(seq: number): Promise<void> {
    if (this.closed || this.unacknowledged(seq).length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          this.log.warn(
            { replicas: this.unacknowledged(seq), waitedMs: ACK_TIMEOUT_MS },
            'replicas did not acknowledge a follow in time; the stream starts without them',
          );
          resolve();
        }, ACK_TIMEOUT_MS),
      };
      this.waiters.add(waiter);
    });
  }

  private settleWaiters(): void {
    for (const waiter of this.waiters) {
      if (this.unacknowledged(waiter.seq).length > 0) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve();
    }
  }

  private unacknowledged(seq: number): string[] {
    const nowMs = this.now();
    return [...this.peers]
      .filter(([replica, heardAt]) => nowMs - heardAt <= PEER_STALE_MS && (this.acked.get(replica) ?? 0) < seq)
      .map(([replica]) => replica);
  }

  private publish(topic: string, message: Control | InboxMessage): void {
    this.options.bus.publish(topic, JSON.stringify(message), { qos: 0 }).catch((err: Error) => {
      this.log.debug({ topic, err: err.message }, 'a follow message to other replicas was not sent');
    });
  }
}

/** A log line or event carries its id; a metrics sample its seq and host figures. */
function isRecord(value: unknown): value is Committed {
  const record = value as Partial<LogRecord & MetricsSample> | null;
  if (typeof record !== 'object' || record === null || typeof record.device !== 'string') return false;
  return typeof record.id === 'number' || (typeof record.seq === 'number' && typeof record.host === 'object' && record.host !== null);
}
