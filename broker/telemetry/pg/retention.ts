/**
 * Keeps the shared telemetry tables within an age: rows that arrived more
 * than `maxAgeMs` ago (by the storing replica's clock) are deleted, oldest
 * first, in chunks of `chunkRows`, each in a transaction of its own. Every
 * replica runs it on a timer; each chunk is deleted under a transaction-level
 * advisory lock, and a replica that finds it taken stops its pass, so the
 * tables are trimmed by one replica at a time.
 *
 * The size bound (telemetryMaxBytes) is not applied here: PostgreSQL keeps a
 * deleted row's space in the table for reuse rather than giving it back, so
 * pg_total_relation_size does not fall when rows are deleted, and deleting
 * "until under the bound" would empty the tables. The database's size is the
 * operator's, bounded by age.
 */
import { ADVISORY_LOCKS, LOCK_CLASS } from '../../store/pg/advisory-locks.js';
import type { PgDatabase } from '../../store/pg/database.js';
import type { RetentionLogger } from '../retention.js';
import { TELEMETRY_TABLES, type TelemetryTable } from '../rows.js';

export interface PgRetentionOptions {
  db: PgDatabase;
  logger: RetentionLogger;
  maxAgeMs: number;
  intervalMs?: number;
  /** Rows per DELETE. */
  chunkRows?: number;
  now?: () => number;
}

/** A pass's outcome: what it deleted, and whether it stopped because another replica was trimming. */
export interface PgRetentionPass {
  deletedByAge: number;
  /** Another replica held the lock: the rest of the pass is left to it. */
  skipped: boolean;
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
      this.runOnce().catch((err: unknown) => this.options.logger.info({ component: 'retention', err }, 'telemetry retention pass failed'));
    }, this.options.intervalMs ?? 30_000);
    this.timer.unref();
  }

  stop(): Promise<unknown> {
    clearInterval(this.timer);
    return this.running?.catch(() => undefined) ?? Promise.resolve();
  }

  /** One pass. Concurrent calls share the pass in progress. */
  runOnce(): Promise<PgRetentionPass> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<PgRetentionPass> {
    const cutoff = this.now() - this.options.maxAgeMs;
    let deletedByAge = 0;
    let skipped = false;
    passes: for (const table of TELEMETRY_TABLES) {
      for (;;) {
        const deleted = await this.deleteChunk(table, cutoff);
        if (deleted === undefined) {
          skipped = true;
          break passes;
        }
        deletedByAge += deleted;
        if (deleted < this.chunkRows) break;
      }
    }
    if (deletedByAge > 0) {
      this.options.logger.info({ component: 'retention', deletedByAge }, 'telemetry retention deleted old rows');
    }
    return { skipped, deletedByAge };
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
