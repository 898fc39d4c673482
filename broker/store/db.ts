/**
 * Opens the hub's SQLite file in WAL mode and brings its schema up to date.
 *
 * Migrations are append-only: a released migration is never edited, a change
 * is a new entry. `PRAGMA user_version` records how many have run, so
 * opening an old file upgrades it and opening a current one does nothing.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

export function openDatabase(file: string): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    checkVersion(db);
    db.pragma('journal_mode = WAL');
    // NORMAL is durable across application crashes in WAL mode; only a power
    // loss may drop the last transactions, which devices re-report anyway.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Refuses, before touching the file, a database written by a newer Flotilla. */
function checkVersion(db: Db): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this hub (${MIGRATIONS.length}); upgrade Flotilla`);
  }
  return current;
}

export function migrate(db: Db): void {
  const current = checkVersion(db);
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
