/**
 * The PostgreSQL database `flotilla migrate` copies into, looked at without changing it (a dry
 * run): reachable with the URL's role, and which control tables hold rows already.
 */
import type { Logger } from 'pino';
import { configError } from '../pg/connect.js';
import { PgDatabase } from '../pg/database.js';
import { DatabaseUnavailable } from '../pg/errors.js';
import { parsePostgresUrl } from '../pg/url.js';
import { controlRows } from './copy.js';

export interface TargetState {
  /** `postgres://role@host:port/database`, without the password. */
  description: string;
  /** Rows in each control table the database has (none before a hub or a migration made them). */
  rows: Map<string, number>;
}

export async function inspectTarget(url: string, logger: Logger): Promise<TargetState> {
  const target = parsePostgresUrl(url);
  const db = new PgDatabase(target, logger, { max: 1, applicationName: 'flotilla-migrate' });
  try {
    let rows: Map<string, number>;
    try {
      rows = await controlRows(db);
    } catch (err) {
      throw configError(target, err instanceof DatabaseUnavailable ? err.cause : err);
    }
    return { description: target.description, rows };
  } finally {
    await db.close();
  }
}
