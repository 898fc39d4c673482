/**
 * The size bound of retention on PostgreSQL (broker/telemetry/pg/retention.ts): over the bound, the
 * oldest rows of every kind go first and the newest window stays, a follower resuming from its
 * cursor reads on as before, and the size counted is the rows kept, not the tables' files, which
 * PostgreSQL does not shrink when rows are deleted.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../broker/store/pg/connect.js';
import type { PgDatabase } from '../../broker/store/pg/database.js';
import { openPgTelemetry, type PgTelemetry } from '../../broker/telemetry/pg/open.js';
import { PgRetention } from '../../broker/telemetry/pg/retention.js';
import type { TelemetryRow } from '../../broker/telemetry/rows.js';
import { eventRow, logRow } from '../../broker/telemetry/store.js';
import type { LogBatch } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { logLine } from '../support/fixtures.js';
import { LogCapture } from '../support/logs.js';
import { holdAdvisoryLock } from '../support/pg-advisory-lock.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { write } from '../support/telemetry-suite.js';

const MiB = 1024 * 1024;
const NOW = Date.parse('2026-11-28T12:00:00Z');
const HOUR = 3_600_000;
const logger = new LogCapture().logger;

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.close());

describe('telemetry retention by size on PostgreSQL', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function open(url: string): Promise<{ db: PgDatabase; telemetry: PgTelemetry }> {
    const db = await openPostgres(url, { logger });
    cleanup.add('pool', () => db.close());
    return { db, telemetry: await openPgTelemetry(db, { logger, maxAgeMs: Number.MAX_SAFE_INTEGER }) };
  }

  /**
   * Old events (arrived 2 h ago), then 3,000 log batches of about 1 KiB each (arrived 1 h ago, in
   * seq order), then new events (arrived now). The lines are random so PostgreSQL cannot compress them.
   */
  async function fill(telemetry: PgTelemetry): Promise<void> {
    const event = (seq: number) => ({ seq, ts: new Date(NOW).toISOString(), type: 'started', message: `event ${seq}` });
    await write(
      telemetry.writer,
      Array.from({ length: 200 }, (_, i) => eventRow('dev-1', event(i + 1), NOW - 2 * HOUR)),
    );
    for (let first = 1; first <= 3000; first += 500) {
      const rows: TelemetryRow[] = [];
      for (let seq = first; seq < first + 500; seq++) {
        const batch: LogBatch = { seq, lines: [logLine(`${seq} ${randomBytes(512).toString('hex')}`)] };
        rows.push(logRow('dev-1', batch, NOW - HOUR + seq, JSON.stringify(batch)));
      }
      await write(telemetry.writer, rows);
    }
    await write(
      telemetry.writer,
      Array.from({ length: 200 }, (_, i) => eventRow('dev-1', event(201 + i), NOW)),
    );
  }

  const seqOf = (line: string) => Number(line.split(' ')[0]);

  it('deletes the oldest rows of every kind until the rows kept are under the bound, and a follower reads on from its cursor', async () => {
    const url = await server.createDatabase();
    const { db, telemetry } = await open(url);
    await fill(telemetry);
    const { reads } = telemetry;
    const retention = new PgRetention({ db, logger, maxAgeMs: Number.MAX_SAFE_INTEGER, maxBytes: MiB, chunkRows: 100, now: () => NOW });
    expect(await retention.usedBytes()).toBeGreaterThan(3 * MiB);
    // A follower that has read up to batch 2,900, and one whose cursor is at the very first line.
    const recent = await reads.queryLogs({ device: 'dev-1', tail: 101, limit: 101 });
    const cursor = recent[0]!.id;
    expect(seqOf(recent[0]!.line)).toBe(2900);
    const staleCursor = (await reads.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 1 }))[0]!.id;

    const pass = await retention.runOnce();

    expect(pass.skipped).toBe(false);
    expect(pass.deletedByAge).toBe(0);
    expect(pass.usedBytes).toBeLessThanOrEqual(MiB);
    // Chunks of 100 rows: the pass stops within a chunk of the bound rather than far below it.
    expect(pass.usedBytes).toBeGreaterThan(0.8 * MiB);
    expect(await retention.usedBytes()).toBe(pass.usedBytes);
    // What the rows hold, summed row by row, is within the bound too (the estimate adds the indexes' share).
    const [held] = await db.query<{ bytes: number }>(
      'SELECT (SELECT sum(pg_column_size(l.*)) FROM log_batches l)::bigint + (SELECT coalesce(sum(pg_column_size(e.*)), 0) FROM events e)::bigint AS bytes',
    );
    expect(held!.bytes).toBeLessThanOrEqual(MiB);

    // The old events went first, then the oldest batches; the new events and the newest batches stayed, with no hole.
    expect((await reads.queryEvents({ limit: 1000 })).map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => 201 + i));
    const kept = (await reads.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 5000 })).map((r) => seqOf(r.line));
    expect(kept[0]).toBeGreaterThan(1);
    expect(kept).toEqual(Array.from({ length: 3001 - kept[0]! }, (_, i) => kept[0]! + i));
    expect(pass.deletedBySize).toBe(200 + kept[0]! - 1);

    // The follower reads on what it had not read, as before the pass; the stale cursor resumes at the oldest line kept.
    expect(await reads.queryLogs({ device: 'dev-1', afterId: cursor, limit: 1000 })).toEqual(recent.slice(1));
    expect((await reads.queryLogs({ device: 'dev-1', afterId: staleCursor, limit: 5000 })).map((r) => seqOf(r.line))).toEqual(kept);
  });

  it('deletes nothing more once under the bound, though the tables take more than it on disk', async () => {
    const url = await server.createDatabase();
    const { db, telemetry } = await open(url);
    await fill(telemetry);
    const retention = new PgRetention({ db, logger, maxAgeMs: Number.MAX_SAFE_INTEGER, maxBytes: MiB, chunkRows: 100, now: () => NOW });
    const first = await retention.runOnce();
    expect(first.deletedBySize).toBeGreaterThan(0);

    // The deleted rows' space stays in the tables' files, vacuumed or not.
    await db.query('VACUUM log_batches, events');
    const [disk] = await db.query<{ bytes: number }>(
      "SELECT pg_total_relation_size('log_batches') + pg_total_relation_size('events') + pg_total_relation_size('metrics') AS bytes",
    );
    expect(disk!.bytes).toBeGreaterThan(2 * MiB);

    const again = await retention.runOnce();
    expect(again).toMatchObject({ deletedByAge: 0, deletedBySize: 0, skipped: false });
    expect(again.usedBytes).toBe(first.usedBytes);
  });

  it('leaves the trimming to a replica that holds the lock, and trims once it is done', async () => {
    const url = await server.createDatabase();
    const { db: a, telemetry } = await open(url);
    const { db: b } = await open(url);
    await fill(telemetry);
    const retention = new PgRetention({ db: b, logger, maxAgeMs: Number.MAX_SAFE_INTEGER, maxBytes: MiB, now: () => NOW });

    const held = await holdAdvisoryLock(a, 'telemetryRetention');
    expect(await retention.runOnce()).toMatchObject({ skipped: true, deletedByAge: 0, deletedBySize: 0 });
    expect(await retention.usedBytes()).toBeGreaterThan(3 * MiB);

    await held.release();
    const pass = await retention.runOnce();
    expect(pass).toMatchObject({ skipped: false, deletedByAge: 0 });
    expect(pass.deletedBySize).toBeGreaterThan(0);
    expect(pass.usedBytes).toBeLessThanOrEqual(MiB);
  });
});
