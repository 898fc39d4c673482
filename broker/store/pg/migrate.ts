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

/**
 * A schema kept apart from the control data's (telemetry's): its own list, versioned in its own
 * table, so either list grows without renumbering the other.
 */
export interface SchemaLedger {
  /** The table holding one row per migration applied (a constant name, never user input). */
  versionTable: string;
  /** What the schema is, for the message when it is newer than the code ("database", "telemetry"). */
  name: string;
}

const CONTROL_SCHEMA: SchemaLedger = { versionTable: 'schema_version', name: 'database' };

export async function migratePostgres(
  db: PgDatabase,
  migrations: readonly string[] = PG_MIGRATIONS,
  { versionTable, name }: SchemaLedger = CONTROL_SCHEMA,
): Promise<MigrationResult> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, ADVISORY_LOCKS.migrations]);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${versionTable} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const [row] = await tx.query<{ version: number }>(`SELECT coalesce(max(version), 0) AS version FROM ${versionTable}`);
    const from = row?.version ?? 0;
    if (from > migrations.length) {
      throw new DatabaseConfigError(
        'schema_newer',
        `${name} schema version ${from} is newer than this hub (${migrations.length}); upgrade Flotilla (database ${db.target.description})`,
      );
    }
    for (let version = from; version < migrations.length; version++) {
      await tx.query(migrations[version]!);
      await tx.query(`INSERT INTO ${versionTable} (version) VALUES ($1)`, [version + 1]);
    }
    return { from, to: migrations.length };
  });
}
