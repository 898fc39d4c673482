/**
 * The stored-telemetry suite (test/support/telemetry-suite.ts) on PostgreSQL: a fresh database per
 * test on one private server, a pool per handle (each replica has its own). Then what is PostgreSQL's
 * own: the telemetry tables are the telemetry file's, versioned apart from the control data; a
 * database out of reach refuses the batch's publishers so their devices send again; retention runs
 * on one replica at a time.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../broker/store/pg/connect.js';
import { PgDatabase } from '../../broker/store/pg/database.js';
import { DatabaseConfigError, DatabaseUnavailable } from '../../broker/store/pg/errors.js';
import { parsePostgresUrl } from '../../broker/store/pg/url.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { TelemetryIngest } from '../../broker/telemetry/ingest.js';
import { TELEMETRY_MIGRATIONS } from '../../broker/telemetry/migrations.js';
import { TELEMETRY_PG_MIGRATIONS } from '../../broker/telemetry/pg/migrations.js';
import { openPgTelemetry } from '../../broker/telemetry/pg/open.js';
import { type PageRows, PgTelemetryReads } from '../../broker/telemetry/pg/reads.js';
import { PgRetention } from '../../broker/telemetry/pg/retention.js';
import { PgTelemetryWriter } from '../../broker/telemetry/pg/writer.js';
import { eventRow, logRow } from '../../broker/telemetry/store.js';
import type { WriteOutcome } from '../../broker/telemetry/writer.js';
import { Cleanup } from '../support/cleanup.js';
import { logLine } from '../support/fixtures.js';
import { LogCapture } from '../support/logs.js';
import { holdAdvisoryLock } from '../support/pg-advisory-lock.js';
import { freePort } from '../support/ports.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { scratchDir } from '../support/scratch.js';
import { type TelemetryEngine, telemetrySuite, write } from '../support/telemetry-suite.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.close());

const retentionLogger = new LogCapture().logger;

/** The suite on PostgreSQL, its reads walking the rows in pages of `pageRows` (small pages make every walk cross pages). */
function postgresEngine(pageRows?: PageRows): TelemetryEngine {
  return {
    async create(cleanup) {
      const url = await server.createDatabase(undefined, { icuLocale: 'en-US' });
      return async () => {
        const db = await openPostgres(url, { logger: new LogCapture().logger });
        cleanup.add('pool', () => db.close());
        const { writer, reads } = await openPgTelemetry(db, { logger: retentionLogger, maxAgeMs: Number.MAX_SAFE_INTEGER });
        return {
          writer,
          reads: pageRows ? new PgTelemetryReads(db, pageRows) : reads,
          async trimByAge(maxAgeMs, nowMs) {
            const pass = await new PgRetention({ db, logger: retentionLogger, maxAgeMs, chunkRows: 1, now: () => nowMs }).runOnce();
            if (pass.skipped) throw new Error('the retention pass was skipped: no other replica holds its lock here');
            return pass.deletedByAge;
          },
        };
      };
    },
  };
}

telemetrySuite('PostgreSQL', postgresEngine());
telemetrySuite('PostgreSQL, read in pages of 1 to 4 rows', postgresEngine({ first: 1, max: 4 }));

describe('telemetry on PostgreSQL', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function open(url: string): Promise<PgDatabase> {
    const db = await openPostgres(url, { logger: new LogCapture().logger, connectTimeoutMs: 1_000 });
    cleanup.add('pool', () => db.close());
    return db;
  }

  it("has the telemetry file's tables and columns, versioned in a table of its own, and a second open changes nothing", async () => {
    const url = await server.createDatabase();
    const db = await open(url);
    await openPgTelemetry(db, { logger: retentionLogger, maxAgeMs: 1 });
    await openPgTelemetry(await open(url), { logger: retentionLogger, maxAgeMs: 1 });

    const file = openDatabase(join(scratchDir('flotilla-telemetry-schema-'), 'telemetry.db'), TELEMETRY_MIGRATIONS);
    cleanup.add('telemetry.db', () => file.close());
    const sqlite: Record<string, string[]> = {};
    for (const table of ['events', 'log_batches', 'metrics']) {
      sqlite[table] = file
        .prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${table}')`)
        .all()
        .map((c) => c.name);
    }
    const rows = await db.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name IN ('events', 'log_batches', 'metrics') ORDER BY table_name, ordinal_position`,
    );
    const pgColumns: Record<string, string[]> = {};
    for (const row of rows) pgColumns[row.table_name] = [...(pgColumns[row.table_name] ?? []), row.column_name];
    expect(pgColumns).toEqual(sqlite);
    expect(await db.query('SELECT version FROM telemetry_schema_version ORDER BY version')).toEqual(
      TELEMETRY_PG_MIGRATIONS.map((_, i) => ({ version: i + 1 })),
    );
    // The control data's version is its own: telemetry's migrations add no row there.
    const [control] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_version');
    const [max] = await db.query<{ v: number }>('SELECT max(version) AS v FROM schema_version');
    expect(control!.n).toBe(max!.v);
  });

  it('refuses a telemetry schema newer than the hub, naming both versions', async () => {
    const db = await open(await server.createDatabase());
    await openPgTelemetry(db, { logger: retentionLogger, maxAgeMs: 1 });
    const newer = TELEMETRY_PG_MIGRATIONS.length + 1;
    await db.query('INSERT INTO telemetry_schema_version (version) VALUES ($1)', [newer]);
    const err = await openPgTelemetry(db, { logger: retentionLogger, maxAgeMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseConfigError);
    expect((err as Error).message).toMatch(
      new RegExp(`^telemetry schema version ${newer} is newer than this hub \\(${TELEMETRY_PG_MIGRATIONS.length}\\); upgrade Flotilla`),
    );
  });

  it('holds a batch while PostgreSQL restarts, and commits it once it is back, its publisher acknowledged', async () => {
    const db = await open(await server.createDatabase());
    const { reads } = await openPgTelemetry(db, { logger: retentionLogger, maxAgeMs: 1 });
    const logs = new LogCapture();
    const ingest = new TelemetryIngest({ writer: new PgTelemetryWriter(db), logger: logs.logger, commitIntervalMs: [0, 0] });
    cleanup.add('ingest', () => ingest.close());
    await server.stop();
    cleanup.add('the server up for the next test', () => (server.running ? undefined : server.start()));

    const batch = { seq: 1, lines: [logLine('through a restart')] };
    const answered = new Promise<Error | undefined>((resolve) =>
      ingest.accept('dev-1', 'logs', JSON.stringify(batch), resolve, { durable: true }),
    );
    const early = await Promise.race([answered, new Promise((resolve) => setTimeout(() => resolve('waiting'), 700))]);
    expect(early).toBe('waiting');
    await server.start();

    expect(await answered).toBeUndefined();
    expect((await reads.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 10 })).map((r) => r.line)).toEqual(['through a restart']);
    expect(logs.matching('storing telemetry failed; publishers refused, to send again')).toEqual([]);
  });

  it('answers a batch with the error and redeliver when the database stays out of reach, so the ingest refuses its publishers', async () => {
    const target = parsePostgresUrl(`postgres://flotilla:nothing@127.0.0.1:${await freePort()}/flotilla`);
    const db = new PgDatabase(target, new LogCapture().logger, { connectTimeoutMs: 1_000 });
    cleanup.add('pool', () => db.close());
    const writer = new PgTelemetryWriter(db, { retryWindowMs: 300 });
    const batch = { seq: 1, lines: [logLine('lost?')] };
    const outcome = await new Promise<WriteOutcome>((resolve) =>
      writer.write([logRow('dev-1', batch, Date.now(), JSON.stringify(batch))], resolve),
    );
    expect(outcome).toMatchObject({ redeliver: true });
    expect('error' in outcome && outcome.error).toBeInstanceOf(DatabaseUnavailable);

    const logs = new LogCapture();
    const ingest = new TelemetryIngest({ writer, logger: logs.logger, commitIntervalMs: [0, 0] });
    cleanup.add('ingest', () => ingest.close());
    const answer = await new Promise<Error | undefined>((resolve) =>
      ingest.accept('dev-1', 'logs', JSON.stringify(batch), resolve, { durable: true }),
    );
    expect(answer).toBeInstanceOf(DatabaseUnavailable);
    expect(ingest.counters.stored.logs).toBe(0);
  });

  it('drops a batch the database refuses for another reason, without asking for it again', async () => {
    // No telemetry tables: every insert fails, and would fail again on every redelivery.
    const db = await open(await server.createDatabase());
    const batch = { seq: 1, lines: [logLine('x')] };
    const outcome = await new Promise<WriteOutcome>((resolve) =>
      new PgTelemetryWriter(db).write([logRow('dev-1', batch, Date.now(), JSON.stringify(batch))], resolve),
    );
    expect(outcome).toMatchObject({ redeliver: false });
    expect('error' in outcome && outcome.error.message).toMatch(/relation "log_batches" does not exist/);
  });

  it('stores an event whose text holds U+0000, which PostgreSQL text cannot hold, instead of refusing its batch on every redelivery', async () => {
    const db = await open(await server.createDatabase());
    const { writer, reads } = await openPgTelemetry(db, { logger: retentionLogger, maxAgeMs: 1 });
    const ids = await write(writer, [
      eventRow('dev-1', { seq: 1, ts: new Date().toISOString(), type: 'started', message: 'a\u0000b' }, Date.now()),
    ]);
    expect(ids[0]).toBeGreaterThan(0);
    expect((await reads.queryEvents({ limit: 10 })).map((e) => e.message)).toEqual(['a\uFFFDb']);
  });

  it('trims on one replica at a time: a pass finding another replica at it stops, and deletes once it is done', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await open(url), await open(url)];
    const { writer, reads } = await openPgTelemetry(a, { logger: retentionLogger, maxAgeMs: 1 });
    const old = { seq: 1, lines: [logLine('old')] };
    await write(writer, [logRow('dev-1', old, 1_000, JSON.stringify(old))]);
    const retention = new PgRetention({ db: b, logger: retentionLogger, maxAgeMs: 1_000, now: () => 10_000 });

    const held = await holdAdvisoryLock(a, 'telemetryRetention');
    expect(await retention.runOnce()).toMatchObject({ skipped: true, deletedByAge: 0 });
    expect(await reads.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 10 })).toHaveLength(1);

    await held.release();
    expect(await retention.runOnce()).toMatchObject({ skipped: false, deletedByAge: 1 });
    expect(await reads.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 10 })).toEqual([]);
  });
});
