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

/**
 * Page cache of the connection, KiB: SQLite's own default. better-sqlite3
 * builds SQLite with 16 MiB, which the device rows fill (a stored state report
 * and desired document each): 1.6 KiB of the hub's RSS per device, kept for
 * the fleet-wide passes that read every row once (planning, the fleet view)
 * and for the single-row writes of state reports, which the OS's file cache
 * serves nearly as fast. Connections with other needs set their own after
 * opening (broker/telemetry/rows.ts).
 */
export const CONTROL_CACHE_KIB = 2000;

/** `migrations` defaults to the control data's (apps, devices…); the telemetry file has its own list. */
export function openDatabase(file: string, migrations: readonly string[] = MIGRATIONS): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    checkVersion(db, migrations);
    db.pragma('journal_mode = WAL');
    // NORMAL is durable across application crashes in WAL mode; only a power
    // loss may drop the last transactions, which devices re-report anyway.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma(`cache_size = -${CONTROL_CACHE_KIB}`);
    migrate(db, migrations);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Refuses, before touching the file, a database written by a newer Flotilla. */
function checkVersion(db: Db, migrations: readonly string[]): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(`database schema version ${current} is newer than this hub (${migrations.length}); upgrade Flotilla`);
  }
  return current;
}

export function migrate(db: Db, migrations: readonly string[] = MIGRATIONS): void {
  const current = checkVersion(db, migrations);
  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      db.exec(migrations[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
