import { inspect } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../broker/store/pg/connect.js';
import type { PgDatabase } from '../../broker/store/pg/database.js';
import { DatabaseConfigError, DatabaseUnavailable } from '../../broker/store/pg/errors.js';
import { PG_MIGRATIONS } from '../../broker/store/pg/migrations.js';
import { Cleanup } from '../support/cleanup.js';
import { LogCapture } from '../support/logs.js';
import { freePort } from '../support/ports.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { waitFor } from '../support/wait.js';

/** The tables of the first six migrations; later ones add more (store-postgres.test.ts holds every version to SQLite's). */
const CONTROL_TABLES = [
  'app_revisions',
  'apps',
  'audit',
  'device_credentials',
  'devices',
  'registration_tokens',
  'rollouts',
  'schema_version',
  'secrets',
  'service_accounts',
];

async function tables(db: PgDatabase): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
  );
  return rows.map((r) => r.name);
}

/** The start-up error of opening `url`, which must be a DatabaseConfigError. */
async function openError(url: string, logs: LogCapture): Promise<DatabaseConfigError> {
  const err = await openPostgres(url, { logger: logs.logger }).then(
    (db) => {
      void db.close();
      throw new Error('opened a database that should have been refused');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DatabaseConfigError);
  return err as DatabaseConfigError;
}

describe('PostgreSQL: migrations', () => {
  let server: PostgresServer;
  const cleanup = new Cleanup();
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.close());
  afterEach(() => cleanup.run());

  it('makes every control table on a fresh database, and a second open changes nothing', async () => {
    const url = await server.createDatabase();
    const logs = new LogCapture('info');
    const first = await openPostgres(url, { logger: logs.logger });
    cleanup.add('first pool', () => first.close());
    expect(await tables(first)).toEqual(expect.arrayContaining(CONTROL_TABLES));
    const applied = await first.query<{ version: number; applied_at: Date }>(
      'SELECT version, applied_at FROM schema_version ORDER BY version',
    );
    expect(applied.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    expect(logs.matching('connected to PostgreSQL and migrated its schema')[0]).toMatchObject({
      schemaVersion: PG_MIGRATIONS.length,
      migratedFrom: 0,
    });

    const second = await openPostgres(url, { logger: logs.logger });
    cleanup.add('second pool', () => second.close());
    expect(await second.query('SELECT version, applied_at FROM schema_version ORDER BY version')).toEqual(applied);
    expect(logs.matching('connected to PostgreSQL')[0]).toMatchObject({
      schemaVersion: PG_MIGRATIONS.length,
      migratedFrom: PG_MIGRATIONS.length,
    });
  });

  it('migrates exactly once when three replicas start at the same moment', async () => {
    const url = await server.createDatabase();
    const logs = new LogCapture('info');
    const opened = await Promise.allSettled([1, 2, 3].map(() => openPostgres(url, { logger: logs.logger })));
    for (const result of opened) if (result.status === 'fulfilled') cleanup.add('pool', () => result.value.close());
    expect(opened.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);
    expect(logs.matching('connected to PostgreSQL and migrated its schema')).toHaveLength(1);
    expect(logs.matching('connected to PostgreSQL')).toHaveLength(2);
    const db = (opened[0] as PromiseFulfilledResult<PgDatabase>).value;
    expect((await db.query('SELECT version FROM schema_version')).length).toBe(PG_MIGRATIONS.length);
  });

  it('reads bigint columns back as numbers and orders text keys by bytes, as the SQLite engine does', async () => {
    const db = await openPostgres(await server.createDatabase(), { logger: new LogCapture().logger });
    cleanup.add('pool', () => db.close());
    const now = new Date().toISOString();
    for (const id of ['b-2', 'B-1', 'a.1', 'a-1', 'a_1']) {
      await db.query('INSERT INTO devices (id, desired_revision, created_at) VALUES ($1, $2, $3)', [id, 2 ** 40, now]);
    }
    const rows = await db.query<{ id: string; desired_revision: number }>('SELECT id, desired_revision FROM devices ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual(['B-1', 'a-1', 'a.1', 'a_1', 'b-2']);
    expect(rows[0]?.desired_revision).toBe(2 ** 40);
  });

  it('refuses a database migrated by a newer hub, naming both versions', async () => {
    const url = await server.createDatabase();
    const logs = new LogCapture();
    const db = await openPostgres(url, { logger: logs.logger });
    await db.query('INSERT INTO schema_version (version) VALUES ($1)', [PG_MIGRATIONS.length + 1]);
    await db.close();
    const err = await openError(url, logs);
    expect(err.problem).toBe('schema_newer');
    expect(err.message).toBe(
      `database schema version ${PG_MIGRATIONS.length + 1} is newer than this hub (${PG_MIGRATIONS.length}); upgrade Flotilla (database postgres://flotilla@127.0.0.1:${server.port}/${new URL(url).pathname.slice(1)})`,
    );
  });
});

describe('PostgreSQL: bad configuration at start', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.close());

  /** Opens `url`, expects `problem`, and checks no message or log line shows the URL's password. */
  async function refused(url: string, problem: DatabaseConfigError['problem']): Promise<string> {
    const logs = new LogCapture('debug');
    const err = await openError(url, logs);
    expect(err.problem).toBe(problem);
    const password = URL.canParse(url) ? decodeURIComponent(new URL(url).password) : /:([^:@/]+)@/.exec(url)?.[1];
    if (password) {
      expect(err.message).not.toContain(password);
      expect(JSON.stringify(logs.records)).not.toContain(password);
    }
    return err.message;
  }

  it('says nothing answers at host:port', async () => {
    const port = await freePort();
    expect(await refused(`postgres://flotilla:pw-unreachable@127.0.0.1:${port}/flotilla`, 'unreachable')).toBe(
      `cannot reach PostgreSQL at 127.0.0.1:${port} (ECONNREFUSED); is it running, and are the host and port right?`,
    );
  });

  it('says the host name does not resolve', async () => {
    expect(await refused('postgres://flotilla:pw-nohost@no-such-host.invalid:5432/flotilla', 'unreachable')).toBe(
      'cannot reach PostgreSQL at no-such-host.invalid:5432 (the host name does not resolve); is it running, and are the host and port right?',
    );
  });

  it('says the password was refused, for which role and where, without the password', async () => {
    const url = new URL(server.url);
    url.password = 'wrong-password-42';
    expect(await refused(url.href, 'auth')).toMatch(
      new RegExp(`^PostgreSQL at 127\\.0\\.0\\.1:${server.port} refused the password for role "flotilla" \\(or there is no such role\\)`),
    );
    url.username = 'nobody';
    expect(await refused(url.href, 'auth')).toContain('refused the password for role "nobody"');
  });

  it('says the server wants a password the URL does not have', async () => {
    const url = new URL(server.url);
    url.password = '';
    expect(await refused(url.href, 'auth')).toBe(
      `PostgreSQL at 127.0.0.1:${server.port} asks for a password for role "flotilla" and the database URL has none`,
    );
  });

  it('says the database does not exist, naming it and the server', async () => {
    expect(await refused(server.urlFor('no_such_db'), 'no_database')).toBe(
      `database "no_such_db" does not exist on PostgreSQL at 127.0.0.1:${server.port}; create it, or fix the URL`,
    );
  });

  it('says the role may not create the tables', async () => {
    await server.adminQuery("CREATE ROLE reader LOGIN PASSWORD 'reader-pw-7'");
    const url = `postgres://reader:reader-pw-7@127.0.0.1:${server.port}/${server.database}`;
    expect(await refused(url, 'no_privilege')).toMatch(
      /^role "reader" may not create the hub's tables in database "flotilla" on PostgreSQL at 127\.0\.0\.1:\d+ \(the server said: permission denied for schema public/,
    );
  });

  it('refuses a URL that is not postgres://, without echoing it', async () => {
    expect(await refused('mysql://root:pw-mysql@127.0.0.1/flotilla', 'bad_url')).toBe(
      'the database URL must start with postgres:// (got mysql://)',
    );
    expect(await refused('postgres://flotilla:pw-hidden-9@:5432/flotilla', 'bad_url')).toBe(
      'the database URL is not a URL; expected postgres://role:password@host:5432/database (percent-encode @ / : # ? in a password: %40 %2F %3A %23 %3F)',
    );
  });
});

describe('PostgreSQL: a running hub loses its database', () => {
  let server: PostgresServer;
  const cleanup = new Cleanup();
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.close());
  afterEach(() => cleanup.run());

  it('fails queries and transactions with DatabaseUnavailable while it is down, crashes nothing, and recovers when it is back', async () => {
    const logs = new LogCapture('info');
    const db = await openPostgres(server.url, { logger: logs.logger, connectTimeoutMs: 1_000 });
    cleanup.add('pool', () => db.close());
    cleanup.add('the server up again for the next test', () => server.start());
    // Several idle connections in the pool, each of which errors when the server goes.
    await Promise.all([1, 2, 3].map(() => db.query('SELECT pg_sleep(0.05)')));
    expect(db.pool.idleCount).toBeGreaterThanOrEqual(2);

    const idleErrors: Error[] = [];
    db.pool.on('error', (err) => idleErrors.push(err));
    await server.kill();
    await waitFor('the idle connections to fail', () => idleErrors.length >= 2 || undefined);
    const down = await db.query('SELECT 1').catch((e: unknown) => e);
    expect(down).toBeInstanceOf(DatabaseUnavailable);
    expect((down as Error).message).toMatch(
      new RegExp(`^PostgreSQL at postgres://flotilla@127\\.0\\.0\\.1:${server.port}/flotilla is unavailable: `),
    );
    // pg-pool hangs the failed client, and with it the connection's password, on the errors of its
    // idle connections; printed in full (console.error, a test runner's report) the error shows it.
    const everything = (value: unknown) => inspect(value, { showHidden: true, depth: 8 });
    expect(everything(idleErrors[0])).toContain(server.password);
    const wrapped = new DatabaseUnavailable(db.target.description, { cause: idleErrors[0] });
    expect(everything(wrapped)).not.toContain(server.password);
    expect(everything(down)).not.toContain(server.password);
    logs.logger.error({ err: wrapped }, 'connection failed');
    expect(JSON.stringify(logs.records)).not.toContain(server.password);
    await expect(db.transaction((tx) => tx.query('SELECT 1'))).rejects.toBeInstanceOf(DatabaseUnavailable);
    // Once the pool's connections are gone, a query fails at connecting.
    await expect(db.query('SELECT 1')).rejects.toThrow(/is unavailable: .*ECONNREFUSED/);

    await server.start();
    expect(await db.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(await db.transaction((tx) => tx.query<{ two: number }>('SELECT 2 AS two'))).toEqual([{ two: 2 }]);
    // The outage is two lines, the second with what failed meanwhile; the idle connections are counted, not logged.
    expect(logs.records.filter((r) => r.level >= 40 && r.msg !== 'connection failed').map((r) => r.msg)).toEqual([
      'PostgreSQL is unavailable: requests that need it answer 503 until it is back; MQTT sessions stay up',
    ]);
    expect(logs.matching('PostgreSQL is back')).toEqual([
      expect.objectContaining({ level: 30, failedQueries: 3, idleConnectionsLost: idleErrors.length, waitedMs: expect.any(Number) }),
    ]);
  });

  it('fails a transaction whose connection is cut mid-way with DatabaseUnavailable, and commits none of it', async () => {
    const db = await openPostgres(await server.createDatabase(), { logger: new LogCapture().logger, connectTimeoutMs: 1_000 });
    cleanup.add('pool', () => db.close());
    const outcome = db
      .transaction(async (tx) => {
        await tx.query("INSERT INTO secrets (name, value, updated_at) VALUES ('s', '\\x00', 'now')");
        await tx.query('SELECT pg_sleep(5)');
      })
      .catch((e: unknown) => e);
    const [backend] = await waitForBackend(server, 'pg_sleep(5)');
    await server.adminQuery('SELECT pg_terminate_backend($1)', [backend]);
    expect(await outcome).toBeInstanceOf(DatabaseUnavailable);
    expect(await db.query('SELECT name FROM secrets')).toEqual([]);
  });

  it('rolls a transaction back when its work throws, and passes the error through as it was', async () => {
    const db = await openPostgres(await server.createDatabase(), { logger: new LogCapture().logger });
    cleanup.add('pool', () => db.close());
    const err = await db
      .transaction(async (tx) => {
        await tx.query("INSERT INTO secrets (name, value, updated_at) VALUES ('s', '\\x00', 'now')");
        await tx.query("INSERT INTO secrets (name, value, updated_at) VALUES ('s', '\\x01', 'now')");
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(pg.DatabaseError);
    expect((err as pg.DatabaseError).code).toBe('23505');
    expect(await db.query('SELECT name FROM secrets')).toEqual([]);
    expect(db.pool.totalCount).toBeGreaterThan(0);
  });
});

/** The pids of backends running a query containing `text`, once there is one. */
async function waitForBackend(server: PostgresServer, text: string): Promise<number[]> {
  for (let i = 0; i < 200; i++) {
    const rows = await server.adminQuery<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid() AND state = 'active'",
      [text],
    );
    if (rows.length > 0) return rows.map((r) => r.pid);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no backend ran ${text}`);
}
