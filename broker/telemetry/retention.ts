/**
 * Keeps the telemetry file within an age and a size. Runs on a timer and
 * deletes in small chunks, oldest first, yielding to the event loop between
 * chunks: better-sqlite3 is synchronous, so one big DELETE would stall ingest
 * (and the broker) for as long as it ran.
 *
 * Size is the file's used pages (page_count − freelist_count): deleted rows'
 * pages go on the free list and are reused by new rows, so the file stops
 * growing at the bound without a VACUUM (which would rewrite the whole file).
 */
import type { Database, Statement } from 'better-sqlite3';
import { TELEMETRY_TABLES, type TelemetryTable } from './rows.js';

/** What retention logs through: the hub's pino logger, or the writer thread's relay to it. */
export interface RetentionLogger {
  info(fields: object, message: string): void;
  debug?(fields: object, message: string): void;
}

export interface RetentionOptions {
  /** The connection that deletes: the one that writes (the writer thread's, in the hub). */
  store: { db: Database };
  logger: RetentionLogger;
  maxAgeMs: number;
  maxBytes: number;
  intervalMs?: number;
  /** Rows per DELETE: small enough that one chunk takes a few milliseconds. */
  chunkRows?: number;
  now?: () => number;
}

export interface RetentionPass {
  deletedByAge: number;
  deletedBySize: number;
  usedBytes: number;
}

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionPass> | undefined;
  private readonly log: RetentionLogger;
  private readonly chunkRows: number;
  private readonly now: () => number;
  private readonly oldest: Record<TelemetryTable, Statement<[], { received_ms: number }>>;
  private readonly deleteChunk: Record<TelemetryTable, Statement<[number, number]>>;

  constructor(private readonly options: RetentionOptions) {
    this.log = options.logger;
    this.chunkRows = options.chunkRows ?? 2000;
    this.now = options.now ?? Date.now;
    const { db } = options.store;
    this.oldest = Object.fromEntries(
      TELEMETRY_TABLES.map((t) => [t, db.prepare<[], { received_ms: number }>(`SELECT received_ms FROM ${t} ORDER BY id LIMIT 1`)]),
    ) as typeof this.oldest;
    this.deleteChunk = Object.fromEntries(
      TELEMETRY_TABLES.map((t) => [
        t,
        // Rows are stored in arrival order, so the oldest by id are the oldest by arrival:
        // no index on received_ms is needed (nor paid for on every insert).
        db.prepare<[number, number]>(`DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} WHERE received_ms < ? ORDER BY id LIMIT ?)`),
      ]),
    ) as typeof this.deleteChunk;
  }

  start(): void {
    const interval = this.options.intervalMs ?? 30_000;
    this.timer = setInterval(() => void this.runOnce(), interval);
    this.timer.unref();
  }

  stop(): Promise<unknown> {
    clearInterval(this.timer);
    return this.running ?? Promise.resolve();
  }

  usedBytes(): number {
    const { db } = this.options.store;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    return (pages - free) * pageSize;
  }

  /** One pass: age first, then size. Concurrent calls share the pass in progress. */
  runOnce(): Promise<RetentionPass> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<RetentionPass> {
    const cutoff = this.now() - this.options.maxAgeMs;
    let deletedByAge = 0;
    for (const table of TELEMETRY_TABLES) {
      for (;;) {
        const deleted = Number(this.deleteChunk[table].run(cutoff, this.chunkRows).changes);
        deletedByAge += deleted;
        if (deleted < this.chunkRows) break;
        await yieldToIngest();
      }
    }
    let deletedBySize = 0;
    // Over the size: drop the oldest rows of whichever table holds the oldest row,
    // so the file keeps the most recent window of every kind.
    while (this.usedBytes() > this.options.maxBytes) {
      const table = this.tableWithOldestRow();
      if (!table) break;
      deletedBySize += Number(this.deleteChunk[table].run(Number.MAX_SAFE_INTEGER, this.chunkRows).changes);
      await yieldToIngest();
    }
    const usedBytes = this.usedBytes();
    if (deletedByAge + deletedBySize > 0) {
      this.log.info({ component: 'retention', deletedByAge, deletedBySize, usedBytes }, 'telemetry retention deleted old rows');
    }
    return { deletedByAge, deletedBySize, usedBytes };
  }

  private tableWithOldestRow(): TelemetryTable | undefined {
    let best: { table: TelemetryTable; at: number } | undefined;
    for (const table of TELEMETRY_TABLES) {
      const row = this.oldest[table].get();
      if (row && (!best || row.received_ms < best.at)) best = { table, at: row.received_ms };
    }
    return best?.table;
  }
}

/** setImmediate lets what was queued meanwhile (publishes, a batch to commit) run between two chunks. */
function yieldToIngest(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
