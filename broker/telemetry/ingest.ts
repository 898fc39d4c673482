/**
 * Telemetry ingest: logs, metrics and events from the broker (publish
 * authorization, ingest-before-ack.ts: no second MQTT hop) into the telemetry file
 * (or, on a hub replica, the shared PostgreSQL database: pg/writer.ts).
 * A `durable` message's `done` waits for its commit, which is never more
 * than the short interval and the commit in progress away; a writer that
 * answers `redeliver` has it called with the error instead, so its publisher
 * is refused rather than acknowledged.
 *
 * Messages are validated on arrival and queued; the queue is written in one
 * transaction (a group commit) after `commitIntervalMs`, or at once when
 * `maxBatchMessages` wait. The commit runs on the writer (writer.ts: in the
 * hub, a thread of its own, so SQLite's work leaves the broker's event loop);
 * the writer holds at most two batches (WRITES_IN_FLIGHT: the one it commits
 * and the next, which it starts without waiting for this thread), and what
 * arrives meanwhile is the one after, so commits grow with the load by
 * themselves; they are answered in order.
 *
 * A durable message's publisher waits for the commit, and with it the
 * device's next packets: every device's throughput is its in-flight window
 * over the time to a commit, so that interval is short (2 ms). With the
 * commits off the event loop their size costs the broker nothing: at 20 ms
 * the hub stored ~22k msg/s with a third of its CPU idle, at 5 ms ~37k, at
 * 2 ms ~45k, and at 0 (a commit whenever the writer is free, smaller ones)
 * ~40k (bench/telemetry-ingest.ts, 100 devices × 8 in flight). Messages nobody
 * waits for (QoS 0 metrics) wait longer once commits are large (200 ms after
 * one of LARGE_COMMIT messages): SQLite writes every page a commit dirtied to
 * the WAL, whole, and each device dirties a page of each index, so commits of
 * a few dozen messages cost the writer 3× the CPU per message of commits of
 * a thousand (bench/telemetry/ingest-costs.ts). Beyond a high-water mark of
 * queued messages, a message's `done` is called only after its commit, and
 * Aedes reads no more from that client until then, so devices that publish
 * faster than SQLite stores are slowed down over TCP instead of growing the
 * hub's memory. Followers (`logs -f`, the fleet's sparklines) hear of
 * rows only once they are committed, so what they see is always queryable,
 * and in commit order.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import {
  DeviceEvent,
  decode,
  type EventRecord,
  formatIssues,
  LogBatch,
  type LogRecord,
  Metrics,
  type MetricsSample,
} from '../../shared/index.js';
import { isDatabaseUnavailable } from '../store/pg/errors.js';
import { DUPLICATE, type TelemetryRow } from './rows.js';
import { batchRecords, eventRow, logRow, metricsRow, type TelemetryStore } from './store.js';
import { InlineWriter, type TelemetryWriter, type WriteOutcome } from './writer.js';

export const TELEMETRY_CHANNELS = ['logs', 'metrics', 'events'] as const;
export type TelemetryChannel = (typeof TELEMETRY_CHANNELS)[number];

/** A queued message: its row, and the parsed message for what the hub does once it is committed. */
type Pending =
  | { channel: 'logs'; row: TelemetryRow; value: LogBatch; done: Done }
  | { channel: 'metrics'; row: TelemetryRow; value: Metrics; done: Done }
  | { channel: 'events'; row: TelemetryRow; value: DeviceEvent; done: Done };

/** Called once a message is stored or dropped; with an error when it was neither and its publisher must send it again. */
export type Done = (err?: Error) => void;

const SCHEMAS = { logs: LogBatch, metrics: Metrics, events: DeviceEvent } as const;

/** At most one warning per device, channel and kind of fault in this window; the rest are counted into the next. */
export const INVALID_WARNING_WINDOW_MS = 10_000;

/** Why a message was dropped unread: it failed its schema, or its encoding could not be undone (telemetry-encoding.ts). */
export type InvalidKind = 'invalid' | 'undecodable';

export interface IngestCounters {
  /** Messages stored (a redelivered one counts under `duplicates`). */
  stored: Record<TelemetryChannel, number>;
  duplicates: number;
  invalid: number;
  /** How long the newest commit's oldest message waited between arrival and being queryable. */
  lagSeconds: number;
  queued: number;
}

/**
 * Where batches are committed: a writer, or the telemetry file's `store`
 * (committed on this thread, through it). A `store` also seeds `latest` at
 * once; without one, the caller seeds it (seedLatest) from its own reads.
 */
export type IngestTarget = { store: TelemetryStore; writer?: TelemetryWriter } | { store?: undefined; writer: TelemetryWriter };

export type IngestOptions = IngestTarget & {
  logger: Logger;
  now?: () => number;
  /** How long a message waits for its commit: [durable or while commits are small, not durable once they are large] (default [5, 200] ms)… */
  commitIntervalMs?: readonly [number, number];
  /** …unless this many are waiting (default 10 000). */
  maxBatchMessages?: number;
  /** Queued messages beyond which publishers wait for the commit (default 20 000). */
  highWaterMessages?: number;
};

const noop = () => undefined;
/**
 * Batches the writer may hold at once: one being committed and the next,
 * which its thread starts the moment the first is done instead of waiting
 * for this thread to hear of the commit, release the publishers and send
 * it (a third would only split the second into smaller, costlier commits).
 */
export const WRITES_IN_FLIGHT = 2;
/** Messages in a commit from which the next one waits the long interval. */
const LARGE_COMMIT = 100;
const DEFAULT_COMMIT_INTERVAL_MS = [2, 200] as const;

export class TelemetryIngest {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerDelay = Number.POSITIVE_INFINITY;
  private lastCommitSize = 0;
  /** Batches with the writer and not yet answered (at most WRITES_IN_FLIGHT). */
  private writing = 0;
  /** A flush came due while the writer held all it may: it runs as soon as one is answered. */
  private flushWhenWritten = false;
  private idle: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  private closed = false;
  private readonly writer: TelemetryWriter;
  /** The seq of the hub's newest own event (hubEvent). */
  private lastHubSeq = 0;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly followers = new EventEmitter();
  private readonly lastWarning = new Map<string, { at: number; suppressed: number }>();
  /** The newest metrics sample of each device, for `top` and Prometheus. */
  readonly latest = new Map<string, MetricsSample>();
  readonly counters: IngestCounters = {
    stored: { logs: 0, metrics: 0, events: 0 },
    duplicates: 0,
    invalid: 0,
    lagSeconds: 0,
    queued: 0,
  };

  constructor(private readonly options: IngestOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ component: 'ingest' });
    this.writer = options.store ? (options.writer ?? new InlineWriter(options.store.db)) : options.writer;
    // Many `logs -f` followers are normal; the default limit of 10 is for leak detection.
    this.followers.setMaxListeners(0);
    if (options.store) this.seedLatest(options.store.latestMetrics());
  }

  /** Takes stored samples as each device's newest, unless a newer one was committed meanwhile. */
  seedLatest(samples: Iterable<MetricsSample>): void {
    for (const sample of samples) {
      const newest = this.latest.get(sample.device);
      if (!newest || newest.seq < sample.seq) this.latest.set(sample.device, sample);
    }
  }

  /**
   * Validates and queues one message; `done` is called once it is stored or
   * dropped — or, below the high-water mark and unless `durable`, at once —
   * or with the error that kept it from being stored when it may be sent again.
   */
  accept(device: string, channel: TelemetryChannel, payload: Buffer | string, done: Done, { durable = false } = {}): void {
    if (this.closed) return void done();
    const raw = typeof payload === 'string' ? payload : payload.toString('utf8');
    const decoded = decode(SCHEMAS[channel], raw);
    if (!decoded.ok) {
      this.reportInvalid(device, channel, formatIssues(decoded.issues));
      return void done();
    }
    // Below the high-water mark the publisher goes on at once; above it, it
    // waits for the commit, so a hub that cannot keep up slows its devices
    // down over TCP instead of growing its queue.
    const hold = durable || this.queue.length >= (this.options.highWaterMessages ?? 20_000);
    this.queue.push(pending(channel, device, decoded.value, raw, this.now(), hold ? done : noop));
    if (!hold) done();
    this.counters.queued = this.queue.length;
    const full = this.queue.length >= (this.options.maxBatchMessages ?? 10000);
    const [short, long] = this.options.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS;
    // A durable message's publisher waits for this commit (its next packets
    // with it), so it never waits the long interval: under load the commits
    // grow by themselves, with everything that arrived while one ran.
    this.scheduleFlush(full ? 0 : durable || this.lastCommitSize < LARGE_COMMIT ? short : long);
  }

  /**
   * An event the hub observed about a device itself (its id used by two
   * connections at once), stored and followed like the device's own. Device
   * seqs start at 1; the hub's are negative (minus the arrival time in ms), so
   * both share the (device, seq) key without colliding; two within one
   * millisecond (a session refused and its topic attempt) take the next seq
   * down, or the second would be ignored as a duplicate of the first.
   * `app` names the app or job the event is about (a job's executions).
   */
  hubEvent(device: string, event: Pick<DeviceEvent, 'type' | 'message' | 'app'>): void {
    if (this.closed) return;
    const receivedMs = this.now();
    const seq = Math.min(-receivedMs, this.lastHubSeq - 1);
    this.lastHubSeq = seq;
    const value: DeviceEvent = { seq, ts: new Date(receivedMs).toISOString(), ...event };
    this.queue.push({ channel: 'events', row: eventRow(device, value, receivedMs), value, done: noop });
    this.counters.queued = this.queue.length;
    this.scheduleFlush((this.options.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS)[0]);
  }

  onLogs(listener: (records: LogRecord[]) => void): () => void {
    return this.listen('logs', listener);
  }

  onEvents(listener: (records: EventRecord[]) => void): () => void {
    return this.listen('events', listener);
  }

  /** Each commit's new samples (a redelivered one is not new), after the commit, in arrival order. */
  onMetrics(listener: (samples: MetricsSample[]) => void): () => void {
    return this.listen('metrics', listener);
  }

  /**
   * Sends everything queued to the writer as one transaction; once it is
   * committed, releases the publishers and tells followers. While the writer
   * holds WRITES_IN_FLIGHT batches, this one goes as soon as one is answered.
   */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDelay = Number.POSITIVE_INFINITY;
    if (this.writing >= WRITES_IN_FLIGHT) {
      this.flushWhenWritten = true;
      return;
    }
    const batch = this.queue;
    if (batch.length === 0) {
      if (this.writing === 0) this.idle?.();
      return;
    }
    this.queue = [];
    this.counters.queued = 0;
    this.writing++;
    this.writer.write(
      batch.map((item) => item.row),
      (outcome) => this.written(batch, outcome),
    );
  }

  /** Stores what is queued, waits for what is being written, and refuses more (the hub is stopping). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await new Promise<void>((resolve) => {
        this.idle = resolve;
        this.flush();
      });
      this.followers.removeAllListeners();
      await this.writer.close();
    })();
    return this.closing;
  }

  private written(batch: Pending[], outcome: WriteOutcome): void {
    this.writing--;
    this.lastCommitSize = batch.length;
    const logs: LogRecord[] = [];
    const events: EventRecord[] = [];
    const samples: MetricsSample[] = [];
    let refused: Error | undefined;
    if ('error' in outcome && outcome.redeliver) {
      // The database is out of reach: no publisher is acknowledged, so each device sends again.
      refused = outcome.error;
      // A database out of reach is logged once by the database (store/pg/database.ts), not per batch.
      const level = isDatabaseUnavailable(outcome.error) ? 'debug' : 'warn';
      this.log[level](
        { err: outcome.error.message, messages: batch.length },
        'storing telemetry failed; publishers refused, to send again',
      );
    } else if ('error' in outcome) {
      // A full disk or a broken file: the batch is lost, the hub keeps running and says so.
      this.log.error({ err: outcome.error, messages: batch.length }, 'storing telemetry failed; batch dropped');
    } else {
      const following = this.followers.listenerCount('logs') > 0;
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i]!;
        const id = outcome.ids[i] ?? DUPLICATE;
        this.count(item.channel, id !== DUPLICATE);
        if (id === DUPLICATE) continue;
        const device = item.row[1];
        if (item.channel === 'logs') {
          // Records for followers only when there are some: most of the time there are none.
          if (following) logs.push(...batchRecords({ id, device, batch: item.value }));
        } else if (item.channel === 'events') {
          events.push({ id, device, ...item.value });
        } else {
          const stored: MetricsSample = { device, ...item.value };
          const newest = this.latest.get(device);
          if (!newest || newest.seq < stored.seq) this.latest.set(device, stored);
          samples.push(stored);
        }
      }
    }
    this.counters.lagSeconds = (this.now() - batch[0]!.row[3]) / 1000;
    for (const item of batch) item.done(refused);
    if (logs.length > 0) this.followers.emit('logs', logs);
    if (events.length > 0) this.followers.emit('events', events);
    if (samples.length > 0) this.followers.emit('metrics', samples);
    const due = this.flushWhenWritten || this.closed || this.queue.length >= (this.options.maxBatchMessages ?? 10000);
    this.flushWhenWritten = false;
    if (due) this.flush();
  }

  private scheduleFlush(delayMs: number): void {
    if (this.timer && this.timerDelay <= delayMs) return;
    clearTimeout(this.timer);
    this.timerDelay = delayMs;
    this.timer = setTimeout(() => this.flush(), delayMs);
  }

  private count(channel: TelemetryChannel, stored: boolean): void {
    if (stored) this.counters.stored[channel]++;
    else this.counters.duplicates++;
  }

  private listen<T>(name: 'logs' | 'events' | 'metrics', listener: (records: T[]) => void): () => void {
    this.followers.on(name, listener);
    return () => this.followers.off(name, listener);
  }

  /**
   * Counts a message dropped unread and says why: a warning at most once per device, channel and
   * kind in INVALID_WARNING_WINDOW_MS (the next one says how many were dropped meanwhile), or,
   * for a fault expected in normal operation, a debug line each time.
   */
  reportInvalid(
    device: string,
    channel: TelemetryChannel,
    reason: string,
    { kind = 'invalid', bytes, expected = false }: { kind?: InvalidKind; bytes?: number; expected?: boolean } = {},
  ): void {
    this.counters.invalid++;
    const fields = { deviceId: device, channel, reason, ...(bytes === undefined ? {} : { bytes }) };
    if (expected) {
      this.log.debug(fields, `${kind} ${channel} message dropped`);
      return;
    }
    const key = `${device}/${channel}/${kind}`;
    const now = this.now();
    const last = this.lastWarning.get(key);
    if (last && now - last.at < INVALID_WARNING_WINDOW_MS) {
      last.suppressed++;
      return;
    }
    // One entry per device, channel and kind that ever sent a bad message: bounded by the fleet.
    this.lastWarning.set(key, { at: now, suppressed: 0 });
    this.log.warn({ ...fields, alsoDroppedBefore: last?.suppressed ?? 0 }, `${kind} ${channel} message dropped`);
  }
}

function pending(
  channel: TelemetryChannel,
  device: string,
  value: LogBatch | Metrics | DeviceEvent,
  raw: string,
  receivedMs: number,
  done: Done,
): Pending {
  if (channel === 'logs') return { channel, row: logRow(device, value as LogBatch, receivedMs, raw), value: value as LogBatch, done };
  if (channel === 'events') return { channel, row: eventRow(device, value as DeviceEvent, receivedMs), value: value as DeviceEvent, done };
  return { channel, row: metricsRow(device, value as Metrics, receivedMs, raw), value: value as Metrics, done };
}

export function isTelemetryChannel(channel: string): channel is TelemetryChannel {
  return (TELEMETRY_CHANNELS as readonly string[]).includes(channel);
}
