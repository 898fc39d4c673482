/** The SQLite engine of AuditStore (hub.db). */
import type { AuditRecord } from '../../../shared/api/results.js';
import {
  AUDIT_MAX_RECORDS,
  AUDIT_PRUNE_EVERY,
  type AuditEnd,
  type AuditOutcome,
  type AuditQuery,
  type AuditRow,
  type AuditStart,
  type AuditStore,
  auditRecordFromRow,
  HUB_LOST,
} from '../../remote/audit-store.js';
import type { Db } from './db.js';

export class SqliteAuditStore implements AuditStore {
  private inserts = 0;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
    private readonly maxRecords = AUDIT_MAX_RECORDS,
  ) {}

  async opened(start: AuditStart): Promise<number> {
    return this.insert(start, 'open', null, null);
  }

  async denied(start: AuditStart, reason: string): Promise<number> {
    const at = this.now().toISOString();
    return this.insert(start, 'denied', at, reason);
  }

  async failed(start: AuditStart, reason: string): Promise<number> {
    return this.insert(start, 'failed', this.now().toISOString(), reason);
  }

  async ended(id: number, end: AuditEnd): Promise<void> {
    this.db
      .prepare(
        `UPDATE audit SET outcome = ?, ended_at = ?, bytes_up = ?, bytes_down = ?, exit_code = ?, reason = ?
         WHERE id = ? AND outcome = 'open'`,
      )
      .run(end.outcome, this.now().toISOString(), end.bytesUp, end.bytesDown, end.exitCode ?? null, end.reason ?? null, id);
  }

  async closeOrphans(reason: string): Promise<number> {
    const at = this.now().toISOString();
    return this.db.prepare(`UPDATE audit SET outcome = ?, ended_at = ?, reason = ? WHERE outcome = 'open'`).run(HUB_LOST, at, reason)
      .changes;
  }

  /** A single hub names no replica in its rows: none. */
  async openReplicas(): Promise<string[]> {
    const rows = this.db
      .prepare(`SELECT DISTINCT replica FROM audit WHERE outcome = 'open' AND replica IS NOT NULL ORDER BY replica`)
      .all();
    return (rows as { replica: string }[]).map((r) => r.replica);
  }

  async closeOrphansOf(replica: string, reason: string): Promise<number> {
    const at = this.now().toISOString();
    return this.db
      .prepare(`UPDATE audit SET outcome = ?, ended_at = ?, reason = ? WHERE outcome = 'open' AND replica = ?`)
      .run(HUB_LOST, at, reason, replica).changes;
  }

  async list(query: AuditQuery): Promise<AuditRecord[]> {
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
    return rows.map(auditRecordFromRow);
  }

  private insert(start: AuditStart, outcome: AuditOutcome, endedAt: string | null, reason: string | null): number {
    const result = this.db
      .prepare(
        `INSERT INTO audit (actor, device, kind, what, outcome, started_at, ended_at, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(start.actor, start.device, start.kind, start.what, outcome, this.now().toISOString(), endedAt, reason);
    const id = Number(result.lastInsertRowid);
    if (++this.inserts % AUDIT_PRUNE_EVERY === 0) this.prune(id);
    return id;
  }

  private prune(newestId: number): void {
    this.db.prepare('DELETE FROM audit WHERE id <= ?').run(newestId - this.maxRecords);
  }
}
