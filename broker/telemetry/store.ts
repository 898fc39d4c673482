/**
 * The telemetry file's reads: one row per message (a log batch keeps its
 * lines as JSON), written by rows.ts in transactions the ingest groups
 * (ingest.ts) — on the writer thread in the hub. The single-message inserts
 * here are for seeding a file (tests, benchmarks) in the caller's thread.
 */

import type { Statement } from 'better-sqlite3';
import {
  type DeviceEvent,
  type EventRecord,
  type HostMetrics,
  type LogBatch,
  type LogLine,
  type LogRecord,
  MAX_LINES_PER_BATCH,
  type Metrics,
  type MetricsSample,
} from '../../shared/index.js';
import type { Db } from '../store/sqlite/db.js';
import { eventOwnerSql, keepsLine } from './log-filter.js';
import { DUPLICATE, READER_CACHE_KIB, RowWriter, type TelemetryRow, type TelemetryTable, timeMs } from './rows.js';

export { TELEMETRY_TABLES, type TelemetryTable } from './rows.js';

export interface LogQuery {
  device: string;
  /** Only this app's lines (not a job's of the same name: log-filter.ts). */
  app?: string;
  /** Only this job's lines. */
  job?: string;
  sinceMs?: number;
  /** Inclusive: a record stamped exactly at it is kept. */
  untilMs?: number;
  afterId?: number;
  /** Keep only the newest N of what matched. */
  tail?: number;
  limit: number;
}

export interface EventQuery {
  device?: string;
  /** Only this app's events (not a job's of the same name: log-filter.ts). */
  app?: string;
  /** Only this job's events. */
  job?: string;
  sinceMs?: number;
  /** Inclusive: a record stamped exactly at it is kept. */
  untilMs?: number;
  afterId?: number;
  tail?: number;
  limit: number;
}

export interface MetricsQuery {
  device: string;
  sinceMs?: number;
  tail?: number;
  limit: number;
}

interface BatchRow {
  id: number;
  device: string;
  body: string;
  ts_ms: number;
}

/** An event's row as both engines store it. */
export interface EventRow {
  id: number;
  device: string;
  seq: number;
  ts: string;
  type: string;
  app: string | null;
  container: string | null;
  message: string;
}

/** What a sparkline needs of a sample's host figures. */
export interface RecentHostMetrics {
  device: string;
  host: Pick<HostMetrics, 'cpuPercent' | 'memUsedBytes' | 'memTotalBytes' | 'disks'>;
}

interface RecentHostRow {
  device: string;
  /** `[cpuPercent, memUsedBytes, memTotalBytes, disks]` as JSON. */
  figures: string;
}

interface MetricsRow {
  device: string;
  ts_ms: number;
  body: string;
}

export class TelemetryStore {
  /** Made on the first insert here (seeding a file): the hub's connection only reads, and keeps SQLite's default cache. */
  private rowWriter: RowWriter | undefined;
  /** A device's batches, newest first (its seq only grows). */
  private readonly newestBatches: Statement<[string], BatchRow>;
  /** A device's batches from an id on, in storage order. `+device`: walk the ids from there, not the device's whole index. */
  private readonly batchesFrom: Statement<[number, string], BatchRow>;
  /** The same order, without the bodies: finding where a long window starts reads no text. */
  private readonly newestBatchTimes: Statement<[string], { id: number; seq: number; ts_ms: number }>;
  /** A device's batches from a seq down, newest first: a window that ends in the past starts reading there. */
  private readonly batchesDownFrom: Statement<[string, number], BatchRow>;
  private readonly newestSamples: Statement<[string], MetricsRow>;
  private readonly newestSamplePerDevice: Statement<[], MetricsRow>;
  private readonly recentHostRows: Statement<{ perDevice: number; maxRows: number }, RecentHostRow>;

  constructor(readonly db: Db) {
    // Raised by the RowWriter if this connection also writes (inserts here, InlineWriter).
    db.pragma(`cache_size = -${READER_CACHE_KIB}`);
    this.newestBatches = db.prepare('SELECT id, device, body, ts_ms FROM log_batches WHERE device = ? ORDER BY seq DESC');
    this.newestBatchTimes = db.prepare('SELECT id, seq, ts_ms FROM log_batches WHERE device = ? ORDER BY seq DESC');
    this.batchesDownFrom = db.prepare('SELECT id, device, body, ts_ms FROM log_batches WHERE device = ? AND seq <= ? ORDER BY seq DESC');
    this.batchesFrom = db.prepare('SELECT id, device, body, ts_ms FROM log_batches WHERE id >= ? AND +device = ? ORDER BY id');
    this.newestSamples = db.prepare('SELECT device, ts_ms, body FROM metrics WHERE device = ? ORDER BY seq DESC');
    this.newestSamplePerDevice = db.prepare(
      'SELECT device, ts_ms, body FROM metrics WHERE id IN (SELECT MAX(id) FROM metrics GROUP BY device)',
    );
    // The newest maxRows rows by id (a range of the primary key, however large the table), the
    // newest perDevice of each device among them (ranked by id alone, no bodies sorted), then
    // only those rows' bodies read, SQLite picking the few figures out of each in one pass.
    this.recentHostRows = db.prepare(
      `SELECT m.device,
              json_extract(m.body, '$.host.cpuPercent', '$.host.memUsedBytes', '$.host.memTotalBytes', '$.host.disks') AS figures
         FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY device ORDER BY id DESC) AS n
                 FROM metrics
                WHERE id > (SELECT COALESCE(MAX(id), 0) FROM metrics) - @maxRows) AS ranked
         JOIN metrics AS m ON m.id = ranked.id
        WHERE ranked.n <= @perDevice
        ORDER BY m.id`,
    );
  }

  private get rows(): RowWriter {
    this.rowWriter ??= new RowWriter(this.db);
    return this.rowWriter;
  }

  /**
   * Stores a batch, `raw` being the message as received (already validated);
   * returns its row id, or undefined for a redelivered batch. Line ids are
   * `rowId × MAX_LINES_PER_BATCH + index` (see `batchRecords`).
   */
  insertLogs(device: string, batch: LogBatch, receivedMs: number, raw: string = JSON.stringify(batch)): number | undefined {
    const id = this.rows.write(logRow(device, batch, receivedMs, raw));
    return id === DUPLICATE ? undefined : id;
  }

  insertMetrics(device: string, sample: Metrics, receivedMs: number, raw: string = JSON.stringify(sample)): MetricsSample | undefined {
    return this.rows.write(metricsRow(device, sample, receivedMs, raw)) === DUPLICATE ? undefined : { device, ...sample };
  }

  insertEvent(device: string, event: DeviceEvent, receivedMs: number): EventRecord | undefined {
    const id = this.rows.write(eventRow(device, event, receivedMs));
    return id === DUPLICATE ? undefined : { id, device, ...event };
  }

  /**
   * A device's lines. Read newest batch first through the (device, seq)
   * index and stop as soon as the window is full (`tail`) or the batches are
   * older than `since`; a follower's `afterId` reads forward by id instead.
   * With `until`, the newest lines start from the newest batch that may hold
   * one at or before it, and a forward read stops at the first batch that
   * starts after it; lines are still filtered one by one, since a batch is
   * stamped with its newest line and may straddle `until`.
   */
  queryLogs(q: LogQuery): LogRecord[] {
    const keep = (r: LogRecord) =>
      keepsLine(q, r) &&
      (q.sinceMs === undefined || timeMs(r.ts, Number.POSITIVE_INFINITY) >= q.sinceMs) &&
      (q.untilMs === undefined || timeMs(r.ts, Number.NEGATIVE_INFINITY) <= q.untilMs) &&
      (q.afterId === undefined || r.id > q.afterId);
    if (q.afterId === undefined && q.tail === undefined && q.sinceMs !== undefined) {
      // The oldest `limit` lines of the window (a follower pages on with afterId):
      // find where the window starts, then read forward from there.
      const start = this.firstBatchSince(q.device, q.sinceMs);
      return start === undefined ? [] : this.logsForward(q.device, start, keep, q.limit, q.untilMs);
    }
    if (q.afterId !== undefined) {
      const out = this.logsForward(q.device, Math.floor(q.afterId / MAX_LINES_PER_BATCH), keep, q.limit, q.untilMs);
      return q.tail !== undefined ? out.slice(-q.tail) : out;
    }
    // The newest `tail` lines: newest batch first, until there are enough.
    const want = Math.min(q.tail ?? q.limit, q.limit);
    const newestFirst: LogRecord[][] = [];
    let count = 0;
    const top = q.untilMs === undefined ? undefined : this.newestBatchUntil(q.device, q.untilMs);
    const rows = top === undefined ? this.newestBatches.iterate(q.device) : this.batchesDownFrom.iterate(q.device, top);
    for (const row of rows) {
      if (q.sinceMs !== undefined && row.ts_ms < q.sinceMs) break;
      const records = batchRecords(row).filter(keep);
      newestFirst.push(records);
      count += records.length;
      if (count >= want) break;
    }
    return newestFirst.reverse().flat().slice(-want);
  }

  /** Lines from batch `fromBatchId` on, in storage order, up to the first batch that starts after `untilMs`. */
  private logsForward(
    device: string,
    fromBatchId: number,
    keep: (r: LogRecord) => boolean,
    limit: number,
    untilMs = Number.POSITIVE_INFINITY,
  ): LogRecord[] {
    const out: LogRecord[] = [];
    for (const row of this.batchesFrom.iterate(fromBatchId, device)) {
      const records = batchRecords(row);
      // Lines come in order, so every later batch starts after `untilMs` too.
      if (records.length > 0 && timeMs(records[0]!.ts, Number.NEGATIVE_INFINITY) > untilMs) return out;
      for (const record of records) {
        if (keep(record)) out.push(record);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /**
   * The seq of the device's newest batch that may hold a line at or before
   * `untilMs`: the one just newer than the newest batch ending by then (it may
   * straddle `untilMs`), or the oldest batch (ids and times only).
   */
  private newestBatchUntil(device: string, untilMs: number): number | undefined {
    let newer: number | undefined;
    for (const row of this.newestBatchTimes.iterate(device)) {
      if (row.ts_ms <= untilMs) return newer ?? row.seq;
      newer = row.seq;
    }
    return newer;
  }

  /** The id of the device's oldest batch whose newest line is at or after `sinceMs` (ids only: nothing is read or unpacked). */
  private firstBatchSince(device: string, sinceMs: number): number | undefined {
    let first: number | undefined;
    for (const row of this.newestBatchTimes.iterate(device)) {
      if (row.ts_ms < sinceMs) break;
      first = row.id;
    }
    return first;
  }

  queryEvents(q: EventQuery): EventRecord[] {
    const { app: _app, job: _job, ...bound } = q;
    let owner: string | undefined;
    const where: string[] = [];
    if (q.device !== undefined) where.push('device = @device');
    where.push(
      ...eventOwnerSql(q, (name) => {
        owner = name;
        return '@owner';
      }),
    );
    if (q.sinceMs !== undefined) where.push('ts_ms >= @sinceMs');
    if (q.untilMs !== undefined) where.push('ts_ms <= @untilMs');
    if (q.afterId !== undefined) where.push('id > @afterId');
    const params = { ...bound, owner };
    return this.newestFirstOrNot<EventRow>('events', where, params).map(eventRecord);
  }

  /** A device's samples, newest first through its (device, seq) index until the window is full; returned oldest first. */
  queryMetrics(q: MetricsQuery): MetricsSample[] {
    const want = Math.min(q.tail ?? q.limit, q.limit);
    const rows: MetricsRow[] = [];
    for (const row of this.newestSamples.iterate(q.device)) {
      if (q.sinceMs !== undefined && row.ts_ms < q.sinceMs) break;
      rows.push(row);
      if (rows.length >= want) break;
    }
    return rows.reverse().map(metricsSample);
  }

  /**
   * Up to `perDevice` of each device's newest host figures, oldest first, read
   * in one query from the newest `maxRows` samples stored (to seed the fleet's
   * sparklines at start without reading the whole table).
   */
  recentHostMetrics(perDevice: number, maxRows: number): RecentHostMetrics[] {
    return this.recentHostRows.all({ perDevice, maxRows }).map((row) => {
      const [cpuPercent, memUsedBytes, memTotalBytes, disks] = JSON.parse(row.figures) as [number, number, number, HostMetrics['disks']];
      return { device: row.device, host: { cpuPercent, memUsedBytes, memTotalBytes, disks } };
    });
  }

  /** The newest stored sample of every device (to seed the hub's in-memory view at start). */
  latestMetrics(): MetricsSample[] {
    return this.newestSamplePerDevice.all().map(metricsSample);
  }

  /**
   * Rows in storage order. With `tail`, the newest N (read newest first, then
   * put back in order); otherwise the oldest `limit` — a follower pages on.
   * Time order is storage order per device, except where a device's clock
   * jumped: then storage order is the honest one.
   */
  private newestFirstOrNot<Row>(table: TelemetryTable, where: string[], q: { tail?: number; limit: number }): Row[] {
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const params = Object.fromEntries(
      Object.entries(q as Record<string, unknown>).filter(([key, v]) => v !== undefined && !['tail', 'limit'].includes(key)),
    );
    if (q.tail !== undefined) {
      const rows = this.db
        .prepare(`SELECT * FROM ${table} ${clause} ORDER BY id DESC LIMIT @n`)
        .all({ ...params, n: Math.min(q.tail, q.limit) }) as Row[];
      return rows.reverse();
    }
    return this.db.prepare(`SELECT * FROM ${table} ${clause} ORDER BY id LIMIT @n`).all({ ...params, n: q.limit }) as Row[];
  }
}

/** A log batch as a row: stamped with its newest line (lines come in order). */
export function logRow(device: string, batch: LogBatch, receivedMs: number, raw: string): TelemetryRow {
  return ['logs', device, batch.seq, receivedMs, batch.lines[batch.lines.length - 1]!.ts, raw];
}

export function metricsRow(device: string, sample: Metrics, receivedMs: number, raw: string): TelemetryRow {
  return ['metrics', device, sample.seq, receivedMs, sample.ts, raw];
}

export function eventRow(device: string, event: DeviceEvent, receivedMs: number): TelemetryRow {
  return ['events', device, event.seq, receivedMs, event.ts, event.type, event.app ?? null, event.container ?? null, event.message];
}

/** A batch's lines as records; a line's id is its batch's id × MAX_LINES_PER_BATCH + its index. */
export function batchRecords(
  row: { id: number; device: string; body: string } | { id: number; device: string; batch: LogBatch },
): LogRecord[] {
  const base = row.id * MAX_LINES_PER_BATCH;
  const lines = 'batch' in row ? row.batch.lines : (JSON.parse(row.body) as LogBatch).lines;
  return lines.map((line: LogLine, n: number) => ({ id: base + n, device: row.device, ...line }));
}

export function eventRecord(row: EventRow): EventRecord {
  return {
    id: row.id,
    device: row.device,
    seq: row.seq,
    ts: row.ts,
    type: row.type,
    ...(row.app !== null ? { app: row.app } : {}),
    ...(row.container !== null ? { container: row.container } : {}),
    message: row.message,
  };
}

export function metricsSample(row: Pick<MetricsRow, 'device' | 'body'>): MetricsSample {
  return { device: row.device, ...(JSON.parse(row.body) as Metrics) };
}
