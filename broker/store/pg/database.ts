/**
 * The hub's connection pool to PostgreSQL, and the only way the PostgreSQL stores reach it.
 *
 * Invariants:
 * - Nothing pg does crashes the process while the database is away: the pool has an 'error'
 *   listener for its idle connections, and a connection held for a transaction has one of its own.
 * - A query that fails because the server is out of reach rejects with `DatabaseUnavailable`; the
 *   pool opens new connections once it is back, with no restart of the hub. Any other error (a
 *   constraint, a bad statement) passes through as pg raised it.
 * - A transaction that ends in `DatabaseUnavailable` may or may not have committed (the server can
 *   go between receiving COMMIT and answering it): callers that must know read the result back.
 * - A connection that failed is destroyed, never handed to the next caller.
 * - An outage is two lines: a warning when the first query fails, and "PostgreSQL is back" with
 *   how long it waited and how many queries and idle connections failed meanwhile. Callers log
 *   their own `DatabaseUnavailable` failures at debug at most (`isDatabaseUnavailable`).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { DatabaseUnavailable, isConnectionFailure } from './errors.js';
import type { PostgresTarget } from './url.js';

/** What a store runs statements on: the pool, or one transaction's connection. */
export interface PgQueryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface PgPoolOptions {
  /** Connections at most (pg's default is 10). */
  max?: number;
  /** How long a query waits to connect before it fails as unavailable. */
  connectTimeoutMs?: number;
  /** `application_name`, which pg_stat_activity shows for each connection. */
  applicationName?: string;
}

const INT8_OID = 20;

/**
 * bigint columns read back as JS numbers (pg's default is a string): they hold what SQLite's
 * INTEGER holds in the other engine, and a value beyond 2^53 is refused rather than rounded.
 */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`PostgreSQL bigint ${text} is beyond a JavaScript number's exact range`);
  return value;
}

export const PG_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** pg settings for one connection to `target`: the pool's and the leader lease's. */
export function pgClientConfig(
  target: PostgresTarget,
  { connectTimeoutMs = 5_000, applicationName = 'flotilla-hub' } = {},
): pg.ClientConfig {
  return {
    connectionString: target.url,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
    application_name: applicationName,
    types: PG_TYPES,
  };
}

export class PgDatabase implements PgQueryable {
  readonly pool: pg.Pool;
  /** When queries started failing as unavailable (performance.now()); undefined while it answers. */
  private downSince: number | undefined;
  /**
   * What failed while the database was away: told in the one "back" line, since every store, timer
   * and login of the hub fails meanwhile and a line each would bury the one that matters.
   */
  private missed = { failedQueries: 0, idleConnectionsLost: 0 };

  constructor(
    readonly target: PostgresTarget,
    private readonly logger: Logger,
    options: PgPoolOptions = {},
  ) {
    this.pool = new pg.Pool({
      ...pgClientConfig(target, options),
      max: options.max ?? 10,
      idleTimeoutMillis: 30_000,
    });
    this.pool.on('error', (err) => {
      // An idle connection died (the server restarted, or dropped it): the pool has removed it
      // and opens a new one for the next query, which says whether the server is really away.
      this.missed.idleConnectionsLost++;
      this.logger.debug(
        { component: 'database', database: target.description, err: err.message },
        'an idle PostgreSQL connection failed; the next query opens a new one',
      );
    });
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]> {
    let rows: R[];
    try {
      rows = (await this.pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw this.translate(err);
    }
    this.answered();
    return rows;
  }

  /** Runs `work` in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it throws. */
  async transaction<T>(work: (tx: PgQueryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.translate(err);
    }
    let failed: Error | undefined;
    const onError = (err: Error) => {
      failed = err;
    };
    client.on('error', onError);
    const tx: PgQueryable = {
      query: async <R extends pg.QueryResultRow>(sql: string, params?: unknown[]) => (await client.query<R>(sql, params)).rows,
    };
    try {
      await client.query('BEGIN');
      const result = await work(tx);
      await client.query('COMMIT');
      this.answered();
      return result;
    } catch (err) {
      if (isConnectionFailure(err)) failed ??= err as Error;
      else await client.query('ROLLBACK').catch((rollbackErr: Error) => (failed ??= rollbackErr));
      throw this.translate(err);
    } finally {
      client.removeListener('error', onError);
      client.release(failed);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** One warning when the database goes, one line when it is back with how long it was waited for and what failed meanwhile. */
  private translate(err: unknown): unknown {
    if (!isConnectionFailure(err)) return err;
    const unavailable = new DatabaseUnavailable(this.target.description, { cause: err });
    if (this.downSince === undefined) {
      this.downSince = performance.now();
      // Idle connections fail as the server goes, before any query does: those count as part of the outage.
      this.missed.failedQueries = 0;
      this.logger.warn(
        { component: 'database', database: this.target.description, err: unavailable.message },
        'PostgreSQL is unavailable: requests that need it answer 503 until it is back; MQTT sessions stay up',
      );
    }
    this.missed.failedQueries++;
    return unavailable;
  }

  private answered(): void {
    if (this.downSince === undefined) {
      // An idle connection lost while queries still succeed was no outage (a restarted backend, a timeout).
      if (this.missed.idleConnectionsLost !== 0) this.missed.idleConnectionsLost = 0;
      return;
    }
    const waitedMs = Math.round(performance.now() - this.downSince);
    this.downSince = undefined;
    this.logger.info({ component: 'database', database: this.target.description, waitedMs, ...this.missed }, 'PostgreSQL is back');
    this.missed = { failedQueries: 0, idleConnectionsLost: 0 };
  }
}
