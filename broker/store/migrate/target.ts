/**
 * The PostgreSQL database `flotilla migrate` copies into: opened as a replica opens it (the
 * control tables and the telemetry tables made or brought up to date, each by its own
 * migrations), or looked at without changing anything for a dry run.
 */
import type { Logger } from 'pino';
import { TELEMETRY_PG_MIGRATIONS, TELEMETRY_SCHEMA } from '../../telemetry/pg/migrations.js';
import { configError, openPostgres } from '../pg/connect.js';
import { PgDatabase } from '../pg/database.js';
import { DatabaseUnavailable } from '../pg/errors.js';
import { migratePostgres } from '../pg/migrate.js';
import { parsePostgresUrl } from '../pg/url.js';
import { tableRows } from './copy.js';

const POOL = { max: 1, applicationName: 'flotilla-migrate' };

/** The target with every table the copy writes, as a replica's start would make them. */
export async function openTarget(url: string, logger: Logger): Promise<PgDatabase> {
  const db = await openPostgres(url, { logger, ...POOL });
  try {
    await migratePostgres(db, TELEMETRY_PG_MIGRATIONS, TELEMETRY_SCHEMA);
    return db;
  } catch (err) {
    await db.close();
    throw err;
  }
}

export interface TargetState {
  /** `postgres://role@host:port/database`, without the password. */
  description: string;
  /** Rows in each copied table the database has (none before a hub or a migration made them). */
  rows: Map<string, number>;
}

export async function inspectTarget(url: string, logger: Logger): Promise<TargetState> {
  const target = parsePostgresUrl(url);
  const db = new PgDatabase(target, logger, POOL);
  try {
    let rows: Map<string, number>;
    try {
      rows = await tableRows(db);
    } catch (err) {
      throw configError(target, err instanceof DatabaseUnavailable ? err.cause : err);
    }
    return { description: target.description, rows };
  } finally {
    await db.close();
  }
}
