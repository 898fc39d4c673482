/**
 * The telemetry file's writes: one row per message, a batch of them in one
 * transaction (a group commit). A row already stored (same device and seq)
 * is ignored, which is how a redelivered QoS 1 message is stored once.
 *
 * This module runs on the writer thread (writer-thread.ts) as well as on the
 * hub's: it imports nothing but the database type, so the thread loads
 * better-sqlite3 and this file, not the protocol's schemas.
 */
import type { Database } from 'better-sqlite3';

export const TELEMETRY_TABLES = ['log_batches', 'metrics', 'events'] as const;
export type TelemetryTable = (typeof TELEMETRY_TABLES)[number];

/**
 * One validated message, as plain values that cross to the writer thread
 * cheaply. `ts` is the device's time: a log batch's newest line, a sample's
 * or an event's own. `raw` is the message as received (stored without
 * re-encoding).
 */
export type TelemetryRow =
  | ['logs', device: string, seq: number, receivedMs: number, ts: string, raw: string]
  | ['metrics', device: string, seq: number, receivedMs: number, ts: string, raw: string]
  | [
      'events',
      device: string,
      seq: number,
      receivedMs: number,
      ts: string,
      type: string,
      app: string | null,
      container: string | null,
      message: string,
    ];

/** No row id is 0 (SQLite's rowids start at 1): it marks a message already stored. */
export const DUPLICATE = 0;

/**
 * Page cache of a connection that writes rows, KiB: the unique indexes'
 * pages are touched at random, one per device per commit, so they are kept
 * in memory. A connection that only reads keeps READER_CACHE_KIB: in WAL
 * mode it drops its whole cache whenever another connection has committed
 * since its last read, which under ingest is every read.
 */
export const WRITER_CACHE_KIB = 32768;
/** SQLite's own default (better-sqlite3 builds it with 16 MiB, which a reader would fill only to throw away). */
export const READER_CACHE_KIB = 2000;

export class RowWriter {
  private readonly insertLog;
  private readonly insertMetric;
  private readonly insertEvent;
  private readonly writeAll: (rows: readonly TelemetryRow[]) => Float64Array;

  /** Tunes `db` as the connection that writes the rows (its cache and checkpoints). */
  constructor(db: Database) {
    db.pragma(`cache_size = -${WRITER_CACHE_KIB}`);
    // Checkpoint (copy the WAL into the file, and fsync) every 32 MiB rather than every 4:
    // a page rewritten by many commits is copied once, and the fsyncs are 8× rarer.
    db.pragma('wal_autocheckpoint = 8192');
    this.insertLog = db.prepare('INSERT OR IGNORE INTO log_batches (device, seq, received_ms, ts_ms, body) VALUES (?, ?, ?, ?, ?)');
    this.insertMetric = db.prepare('INSERT OR IGNORE INTO metrics (device, seq, received_ms, ts, ts_ms, body) VALUES (?, ?, ?, ?, ?, ?)');
    this.insertEvent = db.prepare(
      `INSERT OR IGNORE INTO events (device, seq, received_ms, ts, ts_ms, type, app, container, message)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.writeAll = db.transaction((rows: readonly TelemetryRow[]) => {
      const ids = new Float64Array(rows.length);
      for (let i = 0; i < rows.length; i++) ids[i] = this.write(rows[i]!);
      return ids;
    });
  }

  /** Stores the rows in one transaction; each one's row id, or DUPLICATE. Throws (nothing stored) when the file refuses the commit. */
  writeBatch(rows: readonly TelemetryRow[]): Float64Array {
    return this.writeAll(rows);
  }

  /** One row, inside the caller's transaction: its row id, or DUPLICATE. */
  write(row: TelemetryRow): number {
    const info =
      row[0] === 'logs'
        ? this.insertLog.run(row[1], row[2], row[3], timeMs(row[4], row[3]), row[5])
        : row[0] === 'metrics'
          ? this.insertMetric.run(row[1], row[2], row[3], row[4], timeMs(row[4], row[3]), row[5])
          : this.insertEvent.run(row[1], row[2], row[3], row[4], timeMs(row[4], row[3]), row[5], row[6], row[7], row[8]);
    return info.changes === 1 ? Number(info.lastInsertRowid) : DUPLICATE;
  }
}

/** A timestamp's milliseconds; a device clock that cannot be read falls back to arrival time. */
export function timeMs(ts: string, fallback: number): number {
  const ms = Date.parse(ts);
  return Number.isFinite(ms) ? ms : fallback;
}
