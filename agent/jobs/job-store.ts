/**
 * The agent's record of job executions (record.ts): a SQLite file of its own
 * beside agent.db, `jobs.db`, one row per execution.
 *
 * Invariants:
 * - A write is on the disk when `save` returns (synchronous=FULL: the WAL is
 *   fsynced at each commit), so an attempt recorded as started before its
 *   first container is created stays recorded through a power cut. agent.db
 *   trades that for fewer flash writes; a job's record is written a handful
 *   of times per execution.
 * - Bounded: a final execution the desired state no longer names is kept,
 *   without its output, for `FORGET_AFTER_MS` and at most `MAX_FORGOTTEN`, so
 *   a stale desired document naming it again does not run it again, and the
 *   file does not grow with every job a device ever ran.
 * - Mode 0600, as agent.db: its output lines may hold what a job printed.
 * - A file that cannot be read as a database is moved aside and a new one
 *   begun (logged): the labels on the containers still say which attempts
 *   ran, so none runs again (decide.ts adopts them).
 */
import { chmodSync, closeSync, existsSync, openSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { FINAL_JOB_EXECUTION_STATES } from '../../shared/index.js';
import type { JobRecord } from './record.js';

export const JOB_STORE_FILE = 'jobs.db';
/** How long a finished execution no longer desired is remembered. */
export const FORGET_AFTER_MS = 30 * 24 * 3_600_000;
/** How many finished executions no longer desired are remembered at most. */
export const MAX_FORGOTTEN = 500;

/** Where records live; the runner takes this interface, so a unit test may keep them in memory. */
export interface JobRecordStore {
  load(): JobRecord[];
  /** Durable when it returns. */
  save(record: JobRecord): void;
  /** Keeps the final records not in `named` within the bounds (see the header), dropping the rest. */
  prune(named: ReadonlySet<string>, now: number): void;
  close(): void;
}

interface Row {
  execution: string;
  record: string;
}

export class JobStore implements JobRecordStore {
  private readonly db: Database.Database;
  private readonly upsert;

  constructor(dataDir: string, logger: Logger) {
    const file = join(dataDir, JOB_STORE_FILE);
    this.db = openDatabase(file, logger);
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS executions (
         execution TEXT PRIMARY KEY,
         final INTEGER NOT NULL,
         named INTEGER NOT NULL DEFAULT 1,
         finished_at INTEGER,
         record TEXT NOT NULL
       )`,
    );
    this.upsert = this.db.prepare(
      `INSERT INTO executions (execution, final, named, finished_at, record) VALUES (@execution, @final, 1, @finishedAt, @record)
       ON CONFLICT(execution) DO UPDATE SET final = excluded.final, named = 1, finished_at = excluded.finished_at, record = excluded.record`,
    );
  }

  load(): JobRecord[] {
    const rows = this.db.prepare<[], Row>('SELECT execution, record FROM executions').all();
    const records: JobRecord[] = [];
    for (const row of rows) {
      try {
        records.push(JSON.parse(row.record) as JobRecord);
      } catch {
        // A row that does not parse names no attempt: its containers' labels still do.
      }
    }
    return records;
  }

  save(record: JobRecord): void {
    const finishedAt = record.finishedAt === undefined ? null : Date.parse(record.finishedAt);
    this.upsert.run({
      execution: record.execution,
      final: FINAL_JOB_EXECUTION_STATES.has(record.state) ? 1 : 0,
      finishedAt: Number.isNaN(finishedAt) ? null : finishedAt,
      record: JSON.stringify(record),
    });
  }

  prune(named: ReadonlySet<string>, now: number): void {
    const finals = this.db
      .prepare<[], { execution: string; named: number; finished_at: number | null; record: string }>(
        'SELECT execution, named, finished_at, record FROM executions WHERE final = 1 ORDER BY finished_at DESC',
      )
      .all()
      .filter((row) => !named.has(row.execution));
    const forget = this.db.prepare('UPDATE executions SET named = 0, record = ? WHERE execution = ?');
    const drop = this.db.prepare('DELETE FROM executions WHERE execution = ?');
    this.db.transaction(() => {
      finals.forEach((row, i) => {
        if (i >= MAX_FORGOTTEN || (row.finished_at ?? 0) < now - FORGET_AFTER_MS) {
          drop.run(row.execution);
        } else if (row.named === 1) {
          // Reported no more: its id and state are all it still needs.
          const { output: _output, ...kept } = JSON.parse(row.record) as JobRecord;
          forget.run(JSON.stringify(kept), row.execution);
        }
      });
    })();
  }

  close(): void {
    this.db.close();
  }
}

function openDatabase(file: string, logger: Logger): Database.Database {
  try {
    return configure(file);
  } catch (err) {
    if (!existsSync(file) || !isCorrupt(err)) throw err;
    const aside = `${file}.unreadable-${Date.now()}`;
    logger.error({ file, movedTo: aside, err: (err as Error).message }, 'the job records cannot be read; moved aside, starting a new file');
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
    return configure(file);
  }
}

function configure(file: string): Database.Database {
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function isCorrupt(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT';
}
