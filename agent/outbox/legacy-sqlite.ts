/**
 * The outbox's previous on-disk format: one SQLite file (with its -wal and
 * -shm) holding a row per undelivered message. An agent that finds one moves
 * its messages into segments (outbox-file.ts) and removes it, so an upgrade
 * delivers what the older agent kept.
 *
 * A file SQLite cannot read as a database (damaged, or not SQLite at all) is
 * renamed aside, never deleted: the start goes on, and an operator can still
 * recover it. A file the agent may not open (permissions) is an error the
 * start reports, as any other unwritable state file.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';

export interface LegacyRow {
  cls: number;
  createdAt: number;
  payload: Buffer;
}

export type LegacyRead =
  | { kind: 'none' }
  | { kind: 'rows'; rows: LegacyRow[] }
  /** Not readable as an outbox: renamed to `movedTo`. */
  | { kind: 'unreadable'; movedTo: string; reason: string };

const DAMAGED = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT']);

/** The rows of an old outbox at `path`, oldest first, leaving the file in place. */
export function readLegacyOutbox(path: string, now: () => number = Date.now): LegacyRead {
  if (!existsSync(path)) return { kind: 'none' };
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").get();
    if (!table) return { kind: 'rows', rows: [] };
    const rows = db
      .prepare<[], { cls: number; created_at: number; payload: Buffer }>('SELECT cls, created_at, payload FROM outbox ORDER BY id')
      .all()
      .map((r) => ({ cls: r.cls, createdAt: r.created_at, payload: r.payload }));
    return { kind: 'rows', rows };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string' || !DAMAGED.has(code)) throw err;
    db?.close();
    db = undefined;
    const movedTo = `${path}.unreadable-${now()}`;
    renameSync(path, movedTo);
    for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix);
    return { kind: 'unreadable', movedTo, reason: (err as Error).message };
  } finally {
    db?.close();
  }
}

/** Removes the old outbox once its rows are safely in segments. */
export function removeLegacyOutbox(path: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
}
