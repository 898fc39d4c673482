/**
 * The outbox's SQLite file: one row per message, written in batches (one
 * transaction per write, see outbox.ts) to spare the flash. `:memory:` keeps
 * it in RAM for operators who value their SD card over completeness; a path
 * on tmpfs (`/dev/shm`) also survives agent restarts.
 *
 * WAL with synchronous=NORMAL: a commit is not fsynced (only checkpoints
 * are), so a power cut may lose the last batch but never corrupts the file.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { classIndex, OUTBOX_CLASSES, type OutboxClass } from './classes.js';

export const IN_MEMORY = ':memory:';

export interface StoredMessage {
  id: number;
  createdAt: number;
  payload: Buffer;
}

export interface RemovedRow {
  id: number;
  bytes: number;
}

export interface NewMessage {
  cls: OutboxClass;
  createdAt: number;
  payload: Buffer;
}

export class OutboxFile {
  private readonly db: Database.Database;
  private readonly insertRow;
  private readonly deleteRow;
  private readonly pageRows;
  private readonly oldestRows;
  private readonly deleteRows;
  private readonly expireRows;
  private readonly writeBatch;

  constructor(path: string) {
    if (path !== IN_MEMORY) mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    if (path !== IN_MEMORY) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
    }
    this.db.exec(`CREATE TABLE IF NOT EXISTS outbox (
      id INTEGER PRIMARY KEY,
      cls INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      bytes INTEGER NOT NULL,
      payload BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS outbox_by_class ON outbox (cls, id);`);
    this.insertRow = this.db.prepare<[number, number, number, Buffer]>(
      'INSERT INTO outbox (cls, created_at, bytes, payload) VALUES (?, ?, ?, ?)',
    );
    this.deleteRow = this.db.prepare<[number]>('DELETE FROM outbox WHERE id = ?');
    this.pageRows = this.db.prepare<[number, number, number], { id: number; created_at: number; payload: Buffer }>(
      'SELECT id, created_at, payload FROM outbox WHERE cls = ? AND id > ? ORDER BY id LIMIT ?',
    );
    this.oldestRows = this.db.prepare<[number, number], RemovedRow>('SELECT id, bytes FROM outbox WHERE cls = ? ORDER BY id LIMIT ?');
    this.deleteRows = this.db.transaction((ids: readonly number[]) => {
      for (const id of ids) this.deleteRow.run(id);
    });
    this.expireRows = this.db.prepare<[number, number], RemovedRow>(
      'DELETE FROM outbox WHERE cls = ? AND created_at < ? RETURNING id, bytes',
    );
    this.writeBatch = this.db.transaction((inserts: readonly NewMessage[], deletes: readonly number[]) => {
      for (const id of deletes) this.deleteRow.run(id);
      return inserts.map((m) => Number(this.insertRow.run(classIndex(m.cls), m.createdAt, m.payload.length, m.payload).lastInsertRowid));
    });
  }

  /** Rows and bytes per class, to resume the accounting after a restart. */
  totals(): Record<OutboxClass, { items: number; bytes: number }> {
    const rows = this.db
      .prepare<[], { cls: number; items: number; bytes: number }>(
        'SELECT cls, COUNT(*) AS items, SUM(bytes) AS bytes FROM outbox GROUP BY cls',
      )
      .all();
    const totals = Object.fromEntries(OUTBOX_CLASSES.map((cls) => [cls, { items: 0, bytes: 0 }])) as Record<
      OutboxClass,
      { items: number; bytes: number }
    >;
    for (const row of rows) {
      const cls = OUTBOX_CLASSES[row.cls];
      if (cls) totals[cls] = { items: row.items, bytes: row.bytes };
    }
    return totals;
  }

  /** The oldest rows of a class after `afterId`. */
  page(cls: OutboxClass, afterId: number, limit: number): StoredMessage[] {
    return this.pageRows.all(classIndex(cls), afterId, limit).map((r) => ({ id: r.id, createdAt: r.created_at, payload: r.payload }));
  }

  /** Deletes and inserts in one transaction; returns the new rows' ids in order. */
  write(inserts: readonly NewMessage[], deletes: readonly number[]): number[] {
    if (inserts.length === 0 && deletes.length === 0) return [];
    return this.writeBatch(inserts, deletes);
  }

  /** Deletes the oldest rows of a class until at least `bytes` are freed (or the class is empty). */
  dropOldest(cls: OutboxClass, bytes: number): RemovedRow[] {
    const removed: RemovedRow[] = [];
    let freed = 0;
    for (const row of this.oldestRows.all(classIndex(cls), 256)) {
      if (freed >= bytes) break;
      removed.push(row);
      freed += row.bytes;
    }
    this.deleteRows(removed.map((r) => r.id));
    return removed;
  }

  expire(cls: OutboxClass, createdBefore: number): RemovedRow[] {
    return this.expireRows.all(classIndex(cls), createdBefore);
  }

  close(): void {
    this.db.close();
  }
}
