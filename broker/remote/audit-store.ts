/**
 * The audit trail of remote access, in hub.db: one row per session (opened
 * with outcome `open`, finished with how it ended and the bytes relayed) and
 * one per refused attempt (`denied`, with the reason), for `audit.list`.
 *
 * Bounded by count, not age: the newest AUDIT_MAX_RECORDS rows are kept, so
 * a quiet fleet keeps a long history and a noisy one (a device retrying a
 * refused topic) cannot grow the file without end. Ids only grow
 * (AUTOINCREMENT), so "the newest N" is a range delete on the primary key.
 */
import type { AuditRecord } from '../../shared/api/results.js';
import type { Db } from '../store/db.js';

export const AUDIT_MAX_RECORDS = 100_000;
/** Pruning every insert would be a delete per session; every this many inserts keeps the table within a few rows of the bound. */
const PRUNE_EVERY = 100;

export type AuditKind = AuditRecord['kind'];
export type AuditOutcome = AuditRecord['outcome'];
/** How a session that was open ended. */
export type AuditEnding = Exclude<AuditOutcome, 'open' | 'denied'>;

export interface AuditStart {
  actor: string;
  device: string;
  kind: AuditKind;
  what: string;
}

export interface AuditEnd {
  outcome: AuditEnding;
  bytesUp: number;
  bytesDown: number;
  exitCode?: number | undefined;
  reason?: string | undefined;
}

export interface AuditQuery {
  device?: string | undefined;
  sinceMs?: number | undefined;
  limit: number;
}

interface AuditRow {
  id: number;
  actor: string;
  device: string;
  kind: AuditKind;
  what: string;
  outcome: AuditOutcome;
  started_at: string;
  ended_at: string | null;
  bytes_up: number;
  bytes_down: number;
  exit_code: number | null;
  reason: string | null;
}

export class AuditStore {
  private inserts = 0;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
    private readonly maxRecords = AUDIT_MAX_RECORDS,
  ) {}

  /** A session the device opened; returns its record's id. */
  opened(start: AuditStart): number {
    return this.insert(start, 'open', null, null);
  }

  /** A refused attempt, ended as it started. */
  denied(start: AuditStart, reason: string): number {
    const at = this.now().toISOString();
    return this.insert(start, 'denied', at, reason);
  }

  /** A session that never ran (the device refused it, was offline or did not answer): one record, already ended. */
  failed(start: AuditStart, reason: string): number {
    return this.insert(start, 'failed', this.now().toISOString(), reason);
  }

  ended(id: number, end: AuditEnd): void {
    this.db
      .prepare(
        `UPDATE audit SET outcome = ?, ended_at = ?, bytes_up = ?, bytes_down = ?, exit_code = ?, reason = ?
         WHERE id = ? AND outcome = 'open'`,
      )
      .run(end.outcome, this.now().toISOString(), end.bytesUp, end.bytesDown, end.exitCode ?? null, end.reason ?? null, id);
  }

  /**
   * Sessions still `open` when the hub starts were cut by a hub that stopped
   * without closing them (a crash, a kill): nothing relays them any more.
   */
  closeOrphans(reason: string): number {
    const at = this.now().toISOString();
    return this.db.prepare(`UPDATE audit SET outcome = 'closed', ended_at = ?, reason = ? WHERE outcome = 'open'`).run(at, reason).changes;
  }

  /** Newest first. */
  list(query: AuditQuery): AuditRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (query.device !== undefined) {
      where.push('device = ?');
      args.push(query.device);
    }
    if (query.sinceMs !== undefined) {
      where.push('started_at >= ?');
      args.push(new Date(query.sinceMs).toISOString());
    }
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, query.limit) as AuditRow[];
    return rows.map(toRecord);
  }

  private insert(start: AuditStart, outcome: AuditOutcome, endedAt: string | null, reason: string | null): number {
    const result = this.db
      .prepare(
        `INSERT INTO audit (actor, device, kind, what, outcome, started_at, ended_at, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(start.actor, start.device, start.kind, start.what, outcome, this.now().toISOString(), endedAt, reason);
    const id = Number(result.lastInsertRowid);
    if (++this.inserts % PRUNE_EVERY === 0) this.prune(id);
    return id;
  }

  private prune(newestId: number): void {
    this.db.prepare('DELETE FROM audit WHERE id <= ?').run(newestId - this.maxRecords);
  }
}

function toRecord(row: AuditRow): AuditRecord {
  return {
    id: row.id,
    actor: row.actor,
    device: row.device,
    kind: row.kind,
    what: row.what,
    outcome: row.outcome,
    startedAt: row.started_at,
    ...(row.ended_at !== null ? { endedAt: row.ended_at } : {}),
    bytesUp: row.bytes_up,
    bytesDown: row.bytes_down,
    ...(row.exit_code !== null ? { exitCode: row.exit_code } : {}),
    ...(row.reason !== null ? { reason: row.reason } : {}),
  };
}
