/**
 * Opens the hub's PostgreSQL database at start: checks the URL, connects once to tell each bad
 * configuration apart, and migrates. Every failure is one DatabaseConfigError whose message names
 * what is wrong and where (host:port, role, database) and never the password.
 *
 * Start fails fast rather than waiting for the database: a hub that cannot reach its database at
 * start is misconfigured far more often than unlucky, and the operator sees why at once. Once
 * running, a lost database is waited out (database.ts).
 */
import type { Logger } from 'pino';
import { PgDatabase, type PgPoolOptions } from './database.js';
import { DatabaseConfigError, DatabaseUnavailable, errorCode, isConnectionFailure } from './errors.js';
import { migratePostgres } from './migrate.js';
import { PG_MIGRATIONS } from './migrations.js';
import { type PostgresTarget, parsePostgresUrl } from './url.js';

export interface OpenPostgresOptions extends PgPoolOptions {
  logger: Logger;
  migrations?: readonly string[];
}

export async function openPostgres(
  url: string,
  { logger, migrations = PG_MIGRATIONS, ...poolOptions }: OpenPostgresOptions,
): Promise<PgDatabase> {
  const target = parsePostgresUrl(url);
  const db = new PgDatabase(target, logger, poolOptions);
  try {
    try {
      const client = await db.pool.connect();
      client.release();
    } catch (err) {
      throw configError(target, err);
    }
    let result: { from: number; to: number };
    try {
      result = await migratePostgres(db, migrations);
    } catch (err) {
      if (err instanceof DatabaseConfigError) throw err;
      throw configError(target, err instanceof DatabaseUnavailable ? err.cause : err);
    }
    logger.info(
      { component: 'database', database: target.description, schemaVersion: result.to, migratedFrom: result.from },
      result.from === result.to ? 'connected to PostgreSQL' : 'connected to PostgreSQL and migrated its schema',
    );
    return db;
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}

/** The start-up message for what pg raised while connecting or migrating. */
export function configError(target: PostgresTarget, err: unknown): Error {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  const server = `PostgreSQL at ${target.where}`;
  const said = (text: string) => `${text} (the server said: ${message})`;
  switch (code) {
    case '28P01':
      return new DatabaseConfigError('auth', said(`${server} refused the password for role "${target.user}" (or there is no such role)`), {
        cause: err,
      });
    case '28000':
      return new DatabaseConfigError('auth', said(`${server} refused role "${target.user}" for database "${target.database}"`), {
        cause: err,
      });
    case '3D000':
      return new DatabaseConfigError(
        'no_database',
        `database "${target.database}" does not exist on ${server}; create it, or fix the URL`,
        {
          cause: err,
        },
      );
    case '42501':
      return new DatabaseConfigError(
        'no_privilege',
        said(`role "${target.user}" may not create the hub's tables in database "${target.database}" on ${server}`),
        { cause: err },
      );
  }
  if (/client password must be a string/.test(message)) {
    return new DatabaseConfigError('auth', `${server} asks for a password for role "${target.user}" and the database URL has none`, {
      cause: err,
    });
  }
  if (isConnectionFailure(err)) {
    const why = code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'the host name does not resolve' : code ? code : message;
    return new DatabaseConfigError('unreachable', `cannot reach ${server} (${why}); is it running, and are the host and port right?`, {
      cause: err,
    });
  }
  return err instanceof Error ? err : new Error(message);
}
