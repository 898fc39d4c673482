/**
 * Stored telemetry read from the replicas' shared PostgreSQL database: the
 * telemetry file's queries (../store.ts) ported, so both engines give the same
 * answer for the same rows. Where SQLite walks an index row by row and stops
 * when a window is full, this reads the same walk in pages (keyset, LIMIT),
 * each page's rows in the same order, and stops at the same row.
 */
import type { EventRecord, HostMetrics, LogRecord, MetricsSample } from '../../../shared/index.js';
import { MAX_LINES_PER_BATCH } from '../../../shared/index.js';
import type { PgQueryable } from '../../store/pg/database.js';
import { eventOwnerSql, keepsLine } from '../log-filter.js';
import type { EventQuery, LogQuery, MetricsQuery, RecentHostMetrics, TelemetryReads } from '../reads.js';
import { timeMs } from '../rows.js';
import { batchRecords, type EventRow, eventRecord, metricsSample } from '../store.js';

interface BatchRow {
  id: number;
  seq: number;
  device: string;
  body: string;
  ts_ms: number;
}

interface MetricsRow {
  seq: number;
  device: string;
  ts_ms: number;
  body: string;
}

/** Rows per page: a short window costs one small read, a long one a few growing reads. */
export interface PageRows {
  first: number;
  max: number;
}

const PAGE_ROWS: PageRows = { first: 64, max: 4096 };

/** Beyond every seq and id a row can have: the first page's bound. */
const TOP = Number.MAX_SAFE_INTEGER;

export class PgTelemetryReads implements TelemetryReads {
  constructor(
    private readonly db: PgQueryable,
    private readonly pageRows: PageRows = PAGE_ROWS,
  ) {}

  async queryLogs(q: LogQuery): Promise<LogRecord[]> {
    const keep = (r: LogRecord) =>
      keepsLine(q, r) &&
      (q.sinceMs === undefined || timeMs(r.ts, Number.POSITIVE_INFINITY) >= q.sinceMs) &&
      (q.untilMs === undefined || timeMs(r.ts, Number.NEGATIVE_INFINITY) <= q.untilMs) &&
      (q.afterId === undefined || r.id > q.afterId);
    if (q.afterId === undefined && q.tail === undefined && q.sinceMs !== undefined) {
      const start = await this.firstBatchSince(q.device, q.sinceMs);
      return start === undefined ? [] : this.logsForward(q.device, start, keep, q.limit, q.untilMs);
    }
    if (q.afterId !== undefined) {
      const out = await this.logsForward(q.device, Math.floor(q.afterId / MAX_LINES_PER_BATCH), keep, q.limit, q.untilMs);
      return q.tail !== undefined ? out.slice(-q.tail) : out;
    }
    const want = Math.min(q.tail ?? q.limit, q.limit);
    const newestFirst: LogRecord[][] = [];
    let count = 0;
    const top = q.untilMs === undefined ? TOP : await this.newestBatchUntil(q.device, q.untilMs);
    if (top === undefined) return [];
    for await (const row of this.batchesDownFrom(q.device, top)) {
      if (q.sinceMs !== undefined && row.ts_ms < q.sinceMs) break;
      const records = batchRecords(row).filter(keep);
      newestFirst.push(records);
      count += records.length;
      if (count >= want) break;
    }
    return newestFirst.reverse().flat().slice(-want);
  }

  async queryEvents(q: EventQuery): Promise<EventRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      params.push(value);
      where.push(`${clause} $${params.length}`);
    };
    if (q.device !== undefined) add('device =', q.device);
    where.push(
      ...eventOwnerSql(q, (name) => {
        params.push(name);
        return `$${params.length}`;
      }),
    );
    if (q.sinceMs !== undefined) add('ts_ms >=', q.sinceMs);
    if (q.untilMs !== undefined) add('ts_ms <=', q.untilMs);
    if (q.afterId !== undefined) add('id >', q.afterId);
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const columns = 'id, device, seq, ts, type, app, container, message';
    if (q.tail !== undefined) {
      params.push(Math.min(q.tail, q.limit));
      const rows = await this.db.query<EventRow>(
        `SELECT ${columns} FROM events ${clause} ORDER BY id DESC LIMIT $${params.length}`,
        params,
      );
      return rows.reverse().map(eventRecord);
    }
    params.push(q.limit);
    const rows = await this.db.query<EventRow>(`SELECT ${columns} FROM events ${clause} ORDER BY id LIMIT $${params.length}`, params);
    return rows.map(eventRecord);
  }

  async queryMetrics(q: MetricsQuery): Promise<MetricsSample[]> {
    const want = Math.min(q.tail ?? q.limit, q.limit);
    const rows: MetricsRow[] = [];
    const pages = this.pages<MetricsRow>(
      (below, n) =>
        this.db.query<MetricsRow>(
          'SELECT seq, device, ts_ms, body FROM metrics WHERE device = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3',
          [q.device, below, n],
        ),
      TOP,
      (row) => row.seq,
    );
    for await (const row of pages) {
      if (q.sinceMs !== undefined && row.ts_ms < q.sinceMs) break;
      rows.push(row);
      if (rows.length >= want) break;
    }
    return rows.reverse().map(metricsSample);
  }

  async recentHostMetrics(perDevice: number, maxRows: number): Promise<RecentHostMetrics[]> {
    const rows = await this.db.query<{ device: string; figures: string }>(
      `SELECT m.device,
              json_build_array(b.body -> 'host' -> 'cpuPercent', b.body -> 'host' -> 'memUsedBytes',
                               b.body -> 'host' -> 'memTotalBytes', b.body -> 'host' -> 'disks')::text AS figures
         FROM (SELECT id, row_number() OVER (PARTITION BY device ORDER BY id DESC) AS n
                 FROM metrics
                WHERE id > (SELECT coalesce(max(id), 0) FROM metrics) - $2) AS ranked
         JOIN metrics AS m ON m.id = ranked.id
        CROSS JOIN LATERAL (SELECT m.body::json AS body) AS b
        WHERE ranked.n <= $1
        ORDER BY m.id`,
      [perDevice, maxRows],
    );
    return rows.map((row) => {
      const [cpuPercent, memUsedBytes, memTotalBytes, disks] = JSON.parse(row.figures) as [number, number, number, HostMetrics['disks']];
      return { device: row.device, host: { cpuPercent, memUsedBytes, memTotalBytes, disks } };
    });
  }

  async latestMetrics(): Promise<MetricsSample[]> {
    const rows = await this.db.query<MetricsRow>(
      'SELECT seq, device, ts_ms, body FROM metrics WHERE id IN (SELECT max(id) FROM metrics GROUP BY device) ORDER BY id',
    );
    return rows.map(metricsSample);
  }

  /** A device's batches from a seq down, newest first. */
  private batchesDownFrom(device: string, topSeq: number): AsyncIterable<BatchRow> {
    return this.pages<BatchRow>(
      (below, n) =>
        this.db.query<BatchRow>(
          'SELECT id, seq, device, body, ts_ms FROM log_batches WHERE device = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3',
          [device, below, n],
        ),
      topSeq === TOP ? TOP : topSeq + 1,
      (row) => row.seq,
    );
  }

  /** Lines from batch `fromBatchId` on, in storage order, up to the first batch that starts after `untilMs`. */
  private async logsForward(
    device: string,
    fromBatchId: number,
    keep: (r: LogRecord) => boolean,
    limit: number,
    untilMs = Number.POSITIVE_INFINITY,
  ): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    const rows = this.pages<BatchRow>(
      (above, n) =>
        this.db.query<BatchRow>('SELECT id, seq, device, body, ts_ms FROM log_batches WHERE id > $1 AND device = $2 ORDER BY id LIMIT $3', [
          above,
          device,
          n,
        ]),
      fromBatchId - 1,
      (row) => row.id,
    );
    for await (const row of rows) {
      const records = batchRecords(row);
      if (records.length > 0 && timeMs(records[0]!.ts, Number.NEGATIVE_INFINITY) > untilMs) return out;
      for (const record of records) {
        if (keep(record)) out.push(record);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /** A device's batch ids, seqs and times, newest first (no bodies). */
  private newestBatchTimes(device: string): AsyncIterable<{ id: number; seq: number; ts_ms: number }> {
    return this.pages(
      (below, n) =>
        this.db.query<{ id: number; seq: number; ts_ms: number }>(
          'SELECT id, seq, ts_ms FROM log_batches WHERE device = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3',
          [device, below, n],
        ),
      TOP,
      (row) => row.seq,
    );
  }

  /** The seq of the device's newest batch that may hold a line at or before `untilMs` (see TelemetryStore). */
  private async newestBatchUntil(device: string, untilMs: number): Promise<number | undefined> {
    let newer: number | undefined;
    for await (const row of this.newestBatchTimes(device)) {
      if (row.ts_ms <= untilMs) return newer ?? row.seq;
      newer = row.seq;
    }
    return newer;
  }

  /** The id of the device's oldest batch whose newest line is at or after `sinceMs`. */
  private async firstBatchSince(device: string, sinceMs: number): Promise<number | undefined> {
    let first: number | undefined;
    for await (const row of this.newestBatchTimes(device)) {
      if (row.ts_ms < sinceMs) break;
      first = row.id;
    }
    return first;
  }

  /**
   * Rows of one keyset walk, page after page: `read(bound, n)` gives the next
   * `n` rows past `bound` in the walk's order, and `key` a row's bound for
   * the page after it. Pages double up to `pageRows.max`; the walk ends at a short page.
   */
  private async *pages<Row>(
    read: (bound: number, n: number) => Promise<Row[]>,
    start: number,
    key: (row: Row) => number,
  ): AsyncGenerator<Row> {
    let bound = start;
    for (let n = this.pageRows.first; ; n = Math.min(n * 2, this.pageRows.max)) {
      const rows = await read(bound, n);
      yield* rows;
      if (rows.length < n) return;
      bound = key(rows[rows.length - 1]!);
    }
  }
}
