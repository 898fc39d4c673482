/**
 * The agent's own small SQLite file: the last verified desired state, so a
 * device that reboots while the hub is unreachable keeps running what it
 * was told. Written only when a newer desired state arrives, to spare the SD card.
 * Mode 0600: it holds secret values (see the constructor).
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DesiredState, decode, formatIssues } from '../shared/index.js';
import type { PersistedRecords } from './reconcile/records.js';

export class LocalStore {
  private readonly db: Database.Database;
  private readonly read;
  private readonly write;

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = join(dataDir, 'agent.db');
    // The desired state holds the device's secret values in plain text: the
    // device needs them to start its containers, so they cannot be sealed with
    // a key kept beside them. Only the agent's user may read the file; SQLite
    // gives the -wal and -shm files the database file's mode. chmod also
    // narrows a file an older agent created with the umask's mode.
    closeSync(openSync(file, 'a', 0o600));
    chmodSync(file, 0o600);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    this.read = this.db.prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?');
    this.write = this.db.prepare('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
  }

  /** The persisted desired state; a corrupt or outdated record is reported, not trusted. */
  loadDesired(): { desired?: DesiredState; problem?: string } {
    const row = this.read.get('desired');
    if (!row) return {};
    const result = decode(DesiredState, row.value);
    return result.ok ? { desired: result.value } : { problem: formatIssues(result.issues) };
  }

  /** Update records (committed versions, rolled-back revisions); see reconcile/records.ts. */
  loadRecords(): Partial<PersistedRecords> {
    const row = this.read.get('records');
    if (!row) return {};
    try {
      return JSON.parse(row.value) as PersistedRecords;
    } catch {
      return {};
    }
  }

  saveRecords(records: PersistedRecords): void {
    this.write.run('records', JSON.stringify(records));
  }

  /**
   * The next event sequence number. `seq` must grow across restarts so the
   * hub can drop duplicates; it is written per event, and events are rare.
   */
  nextEventSeq(): number {
    const current = Number(this.read.get('event-seq')?.value ?? '0');
    const next = Number.isSafeInteger(current) ? current + 1 : 1;
    this.write.run('event-seq', String(next));
    return next;
  }

  /**
   * Counts agent starts. Telemetry seqs are `boot * 2^32 + n`, unique across
   * restarts at the cost of one write per start, not one per message (the
   * flash is spared), and without trusting a clock a Pi may not have.
   */
  nextBoot(): number {
    const current = Number(this.read.get('boot')?.value ?? '0');
    const next = Number.isSafeInteger(current) ? current + 1 : 1;
    this.write.run('boot', String(next));
    return next;
  }

  saveDesired(desired: DesiredState): void {
    this.write.run('desired', JSON.stringify(desired));
  }

  close(): void {
    this.db.close();
  }
}
