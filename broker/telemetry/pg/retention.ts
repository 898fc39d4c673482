/**
 * Keeps the shared telemetry tables within an age and a size. Rows that
 * arrived more than `maxAgeMs` ago (by the storing replica's clock) are
 * deleted, oldest first; then, while the tables' size is over `maxBytes`, the
 * oldest rows of whichever table holds the oldest row, so every kind keeps its
 * most recent window, as the telemetry file does (../retention.ts). Deletes
 * go in chunks of `chunkRows`, each in a transaction of its own under a
 * transaction-level advisory lock; a replica that finds it taken stops its
 * pass, so the tables are trimmed by one replica at a time.
 *
 * Size here is what the rows kept take, not the files' size on disk
 * (pg_total_relation_size): PostgreSQL keeps a deleted row's space in the
 * table for new rows (once vacuumed) rather than giving it back, so the files
 * never shrink when rows are deleted, and deleting "until the files are under
 * the bound" would empty the tables. A table's share is its rows (the span of
 * its ids, as rows are stored in id order) times the mean stored size of its
 * newest rows (pg_column_size), scaled by its indexes' size over its heap's,
 * so index entries count as they do in the telemetry file's used pages.
 * Every term is read in the pass, transactionally (no statistics that lag),
 * so a second pass right after the first deletes nothing. The files stop
 * growing at about the bound plus what autovacuum has not yet freed.
 */
import { ADVISORY_LOCKS, LOCK_CLASS } from '../../store/pg/advisory-locks.js';
import type { PgDatabase } from '../../store/pg/database.js';
import { isDatabaseUnavailable } from '../../store/pg/errors.js';
import type { RetentionLogger } from '../retention.js';
import { TELEMETRY_TABLES, type TelemetryTable } from '../rows.js';

export interface PgRetentionOptions {
  db: PgDatabase;
  logger: RetentionLogger;
  maxAgeMs: number;
  /** The kept rows' size (see above) stays under this; the oldest rows go first. Default: no size bound. */
  maxBytes?: number;
  intervalMs?: number;
  /** Rows per DELETE. */
  chunkRows?: number;
  now?: () => number;
}

/** A pass's outcome: what it deleted, the size it left, and whether it stopped because another replica was trimming. */
export interface PgRetentionPass {
  deletedByAge: number;
  deletedBySize: number;
  /** The kept rows' size after the pass (see above); 0 when the pass has no size bound or was skipped. */
  usedBytes: number;
  /** Another replica held the lock: the rest of the pass is left to it. */
  skipped: boolean;
}

/** The newest rows whose mean size stands for a table's rows: enough to smooth a few odd ones, cheap through the id index. */
const SIZE_SAMPLE_ROWS = 1000;

/** One table's share of the size. */
interface TableShare {
  table: TelemetryTable;
  rows: number;
  /** A row's stored size, with its share of the indexes. */
  rowBytes: number;
  /** When its oldest row arrived; undefined when it is empty. */
  oldestMs: number | undefined;
}

export class PgRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PgRetentionPass> | undefined;
  private readonly chunkRows: number;
  private readonly now: () => number;

  constructor(private readonly options: PgRetentionOptions) {
    this.chunkRows = options.chunkRows ?? 2000;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => {
      // A pass that fails (the database away) is tried again at the next tick.
      // The database being away is logged once by the database itself (database.ts).
      this.runOnce().catch((err: unknown) =>
        isDatabaseUnavailable(err)
          ? this.options.logger.debug?.({ component: 'retention', err: err.message }, 'telemetry retention pass failed')
          : this.options.logger.info({ component: 'retention', err }, 'telemetry retention pass failed'),
      );
    }, this.options.intervalMs ?? 30_000);
    this.timer.unref();
  }

  stop(): Promise<unknown> {
    clearInterval(this.timer);
    return this.running?.catch(() => undefined) ?? Promise.resolve();
  }

  /** One pass: age first, then size. Concurrent calls share the pass in progress. */
  runOnce(): Promise<PgRetentionPass> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** The kept rows' size as the size bound counts it (see above). */
  async usedBytes(): Promise<number> {
    return total(await Promise.all(TELEMETRY_TABLES.map((table) => this.share(table))));
  }

  private async pass(): Promise<PgRetentionPass> {
    const pass: PgRetentionPass = { deletedByAge: 0, deletedBySize: 0, usedBytes: 0, skipped: false };
    const cutoff = this.now() - this.options.maxAgeMs;
    ages: for (const table of TELEMETRY_TABLES) {
      for (;;) {
        const deleted = await this.deleteChunk(table, cutoff);
        if (deleted === undefined) {
          pass.skipped = true;
          break ages;
        }
        pass.deletedByAge += deleted;
        if (deleted < this.chunkRows) break;
      }
    }
    if (!pass.skipped && this.options.maxBytes !== undefined) await this.trimToSize(this.options.maxBytes, pass);
    if (pass.deletedByAge + pass.deletedBySize > 0) {
      const { deletedByAge, deletedBySize, usedBytes } = pass;
      this.options.logger.info({ component: 'retention', deletedByAge, deletedBySize, usedBytes }, 'telemetry retention deleted old rows');
    }
    return pass;
  }

  /**
   * Deletes the oldest rows across the tables until their size is under `maxBytes`, reading the
   * trimmed table's share again after each chunk (a few index probes and its newest rows).
   */
  private async trimToSize(maxBytes: number, pass: PgRetentionPass): Promise<void> {
    const shares = await Promise.all(TELEMETRY_TABLES.map((table) => this.share(table)));
    while (total(shares) > maxBytes) {
      const oldest = shares
        .filter((s) => s.oldestMs !== undefined && s.rows > 0)
        .reduce<TableShare | undefined>((best, s) => (best && best.oldestMs! <= s.oldestMs! ? best : s), undefined);
      if (!oldest) break;
      const deleted = await this.deleteChunk(oldest.table, Number.MAX_SAFE_INTEGER);
      if (deleted === undefined) {
        pass.skipped = true;
        return;
      }
      pass.deletedBySize += deleted;
      Object.assign(oldest, await this.share(oldest.table));
    }
    pass.usedBytes = total(shares);
  }

  /** A table's rows, their mean stored size with the indexes' share, and when its oldest row arrived. */
  private async share(table: TelemetryTable): Promise<TableShare> {
    const [row] = await this.options.db.query<{
      first: number | null;
      last: number | null;
      oldest_ms: number | null;
      mean: number | null;
      heap: number;
      indexes: number;
    }>(
      `SELECT min(id) AS first, max(id) AS last,
              (SELECT received_ms FROM ${table} ORDER BY id LIMIT 1) AS oldest_ms,
              (SELECT avg(pg_column_size(s.*))::float8 FROM (SELECT * FROM ${table} ORDER BY id DESC LIMIT ${SIZE_SAMPLE_ROWS}) s) AS mean,
              pg_relation_size('${table}') AS heap, pg_indexes_size('${table}') AS indexes
         FROM ${table}`,
    );
    if (!row || row.first === null || row.last === null) return { table, rows: 0, rowBytes: 0, oldestMs: undefined };
    const indexShare = row.heap > 0 ? row.indexes / row.heap : 0;
    return {
      table,
      rows: row.last - row.first + 1,
      rowBytes: (row.mean ?? 0) * (1 + indexShare),
      oldestMs: row.oldest_ms ?? undefined,
    };
  }

  /**
   * Deletes one chunk of the oldest rows that arrived before `cutoff`, in a transaction of its own
   * (a long pass holds no locks for long), under the lock: undefined when another replica holds it.
   */
  private deleteChunk(table: TelemetryTable, cutoff: number): Promise<number | undefined> {
    return this.options.db.transaction(async (tx) => {
      const [lock] = await tx.query<{ held: boolean }>('SELECT pg_try_advisory_xact_lock($1, $2) AS held', [
        LOCK_CLASS,
        ADVISORY_LOCKS.telemetryRetention,
      ]);
      if (!lock?.held) return undefined;
      // Rows are stored in arrival order, so the oldest by id are the oldest by arrival.
      const deleted = await tx.query<{ id: number }>(
        `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE received_ms < $1 ORDER BY id LIMIT $2) RETURNING id`,
        [cutoff, this.chunkRows],
      );
      return deleted.length;
    });
  }
}

function total(shares: readonly TableShare[]): number {
  return Math.round(shares.reduce((sum, s) => sum + s.rows * s.rowBytes, 0));
}
