/**
 * The telemetry file's reads and writes. Writes are single-row prepared
 * statements, batched into one transaction by the ingest (ingest.ts); a row
 * already stored (same device and seq) is ignored, which is how a redelivered
 * QoS 1 message is stored once.
 */
import type { DeviceEvent, EventRecord, LogBatch, LogRecord, LogStream, Metrics, MetricsSample } from '../../shared/index.js';
import type { Db } from '../store/db.js';

export const TELEMETRY_TABLES = ['logs', 'metrics', 'events'] as const;
export type TelemetryTable = (typeof TELEMETRY_TABLES)[number];

export interface LogQuery {
  device: string;
  app?: string;
  sinceMs?: number;
  afterId?: number;
  /** Keep only the newest N of what matched. */
  tail?: number;
  limit: number;
}

export interface EventQuery {
  device?: string;
  app?: string;
  sinceMs?: number;
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

interface LogRow {
  id: number;
  device: string;
  ts: string;
  app: string;
  container: string;
  stream: LogStream;
  line: string;
  truncated: number | null;
  suppressed: number | null;
}

interface EventRow {
  id: number;
  device: string;
  seq: number;
  ts: string;
  type: string;
  app: string | null;
  container: string | null;
  message: string;
}

interface MetricsRow {
  device: string;
  seq: number;
  ts: string;
  body: string;
}

export class TelemetryStore {
  private readonly insertLog;
  private readonly insertMetric;
  private readonly insertEventRow;

  constructor(readonly db: Db) {
    this.insertLog = db.prepare(
      `INSERT OR IGNORE INTO logs (device, seq, n, received_ms, ts, ts_ms, app, container, stream, line, truncated, suppressed)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertMetric = db.prepare('INSERT OR IGNORE INTO metrics (device, seq, received_ms, ts, ts_ms, body) VALUES (?, ?, ?, ?, ?, ?)');
    this.insertEventRow = db.prepare(
      `INSERT OR IGNORE INTO events (device, seq, received_ms, ts, ts_ms, type, app, container, message)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /** Stores a batch's lines; returns those that were new (none for a redelivered batch). */
  insertLogs(device: string, batch: LogBatch, receivedMs: number): LogRecord[] {
    const stored: LogRecord[] = [];
    batch.lines.forEach((line, n) => {
      const info = this.insertLog.run(
        device,
        batch.seq,
        n,
        receivedMs,
        line.ts,
        timeMs(line.ts, receivedMs),
        line.app,
        line.container,
        line.stream,
        line.line,
        line.truncated ? 1 : null,
        line.suppressed ?? null,
      );
      if (info.changes === 1) stored.push({ id: Number(info.lastInsertRowid), device, ...line });
    });
    return stored;
  }

  insertMetrics(device: string, sample: Metrics, receivedMs: number): MetricsSample | undefined {
    const { seq, ts, ...body } = sample;
    const info = this.insertMetric.run(device, seq, receivedMs, ts, timeMs(ts, receivedMs), JSON.stringify(body));
    return info.changes === 1 ? { device, ...sample } : undefined;
  }

  insertEvent(device: string, event: DeviceEvent, receivedMs: number): EventRecord | undefined {
    const info = this.insertEventRow.run(
      device,
      event.seq,
      receivedMs,
      event.ts,
      timeMs(event.ts, receivedMs),
      event.type,
      event.app ?? null,
      event.container ?? null,
      event.message,
    );
    return info.changes === 1 ? { id: Number(info.lastInsertRowid), device, ...event } : undefined;
  }

  queryLogs(q: LogQuery): LogRecord[] {
    const where = ['device = @device'];
    if (q.app !== undefined) where.push('app = @app');
    if (q.sinceMs !== undefined) where.push('ts_ms >= @sinceMs');
    if (q.afterId !== undefined) where.push('id > @afterId');
    const rows = this.newestFirstOrNot<LogRow>('logs', where, q);
    return rows.map(logRecord);
  }

  queryEvents(q: EventQuery): EventRecord[] {
    const where: string[] = [];
    if (q.device !== undefined) where.push('device = @device');
    if (q.app !== undefined) where.push('app = @app');
    if (q.sinceMs !== undefined) where.push('ts_ms >= @sinceMs');
    if (q.afterId !== undefined) where.push('id > @afterId');
    return this.newestFirstOrNot<EventRow>('events', where, q).map(eventRecord);
  }

  queryMetrics(q: MetricsQuery): MetricsSample[] {
    const where = ['device = @device'];
    if (q.sinceMs !== undefined) where.push('ts_ms >= @sinceMs');
    return this.newestFirstOrNot<MetricsRow>('metrics', where, q).map(metricsSample);
  }

  /** The newest stored sample of every device (to seed the hub's in-memory view at start). */
  latestMetrics(): MetricsSample[] {
    return this.db
      .prepare<[], MetricsRow>('SELECT device, seq, ts, body FROM metrics WHERE id IN (SELECT MAX(id) FROM metrics GROUP BY device)')
      .all()
      .map(metricsSample);
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

/** A timestamp's milliseconds; a device clock that cannot be read falls back to arrival time. */
function timeMs(ts: string, fallback: number): number {
  const ms = Date.parse(ts);
  return Number.isFinite(ms) ? ms : fallback;
}

function logRecord(row: LogRow): LogRecord {
  return {
    id: row.id,
    device: row.device,
    app: row.app,
    container: row.container,
    stream: row.stream,
    ts: row.ts,
    line: row.line,
    ...(row.truncated ? { truncated: true } : {}),
    ...(row.suppressed !== null ? { suppressed: row.suppressed } : {}),
  };
}

function eventRecord(row: EventRow): EventRecord {
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

function metricsSample(row: MetricsRow): MetricsSample {
  return { device: row.device, seq: row.seq, ts: row.ts, ...(JSON.parse(row.body) as Omit<MetricsSample, 'device' | 'seq' | 'ts'>) };
}
