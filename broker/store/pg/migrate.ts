/**
 * Brings a PostgreSQL database's schema up to date, once, however many replicas start at once.
 *
 * Every replica runs this at start, in one transaction that first takes a transaction-level
 * advisory lock: the second and third replica wait on the lock, then find the schema current and do
 * nothing. PostgreSQL's DDL is transactional, so the migrations of one start apply together or not
 * at all; `schema_version` has one row per migration applied, and its highest version is the
 * schema's.
 */
import { ADVISORY_LOCKS, LOCK_CLASS } from './advisory-locks.js';
import type { PgDatabase } from './database.js';
import { DatabaseConfigError } from './errors.js';
import { PG_MIGRATIONS } from './migrations.js';

export interface MigrationResult {
  /** The schema version found before this run. */
  from: number;
  /** The schema version now (`from` when nothing ran). */
  to: number;
}

export async function migratePostgres(db: PgDatabase, migrations: readonly string[] = PG_MIGRATIONS): Promise<MigrationResult> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, ADVISORY_LOCKS.migrations]);
    await tx.query(
      'CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const [row] = await tx.query<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM schema_version');
    const from = row?.version ?? 0;
    if (from > migrations.length) {
      throw new DatabaseConfigError(
        'schema_newer',
        `database schema version ${from} is newer than this hub (${migrations.length}); upgrade Flotilla (database ${db.target.description})`,
      );
    }
    for (let version = from; version < migrations.length; version++) {
      await tx.query(migrations[version]!);
      await tx.query('INSERT INTO schema_version (version) VALUES ($1)', [version + 1]);
    }
    return { from, to: migrations.length };
  });
}
