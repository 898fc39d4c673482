/** The PostgreSQL engine of AuditStore. */
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
import type { PgDatabase } from './database.js';

export class PgAuditStore implements AuditStore {
  /** Inserts by this replica: each prunes every AUDIT_PRUNE_EVERY of its own, which keeps the shared table near the bound. */
  private inserts = 0;

  constructor(
    private readonly db: PgDatabase,
    private readonly now: () => Date = () => new Date(),
    private readonly maxRecords = AUDIT_MAX_RECORDS,
    /** This replica's name, written into the sessions it opens (see hub-presence.ts). */
    private readonly replica: string | null = null,
  ) {}

  async opened(start: AuditStart): Promise<number> {
    return this.insert(start, 'open', null, null);
  }

  async denied(start: AuditStart, reason: string): Promise<number> {
    return this.insert(start, 'denied', this.now().toISOString(), reason);
  }

  async failed(start: AuditStart, reason: string): Promise<number> {
    return this.insert(start, 'failed', this.now().toISOString(), reason);
  }

  async ended(id: number, end: AuditEnd): Promise<void> {
    await this.db.query(
      `UPDATE audit SET outcome = $1, ended_at = $2, bytes_up = $3, bytes_down = $4, exit_code = $5, reason = $6
        WHERE id = $7 AND outcome = 'open'`,
      [end.outcome, this.now().toISOString(), end.bytesUp, end.bytesDown, end.exitCode ?? null, end.reason ?? null, id],
    );
  }

  async closeOrphans(reason: string): Promise<number> {
    const closed = await this.db.query("UPDATE audit SET outcome = $1, ended_at = $2, reason = $3 WHERE outcome = 'open' RETURNING id", [
      HUB_LOST,
      this.now().toISOString(),
      reason,
    ]);
    return closed.length;
  }

  async openReplicas(): Promise<string[]> {
    const rows = await this.db.query<{ replica: string }>(
      "SELECT DISTINCT replica FROM audit WHERE outcome = 'open' AND replica IS NOT NULL ORDER BY replica",
    );
    return rows.map((r) => r.replica);
  }

  async closeOrphansOf(replica: string, reason: string): Promise<number> {
    const closed = await this.db.query(
      "UPDATE audit SET outcome = $1, ended_at = $2, reason = $3 WHERE outcome = 'open' AND replica = $4 RETURNING id",
      [HUB_LOST, this.now().toISOString(), reason, replica],
    );
    return closed.length;
  }

  async list(query: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (query.device !== undefined) {
      args.push(query.device);
      where.push(`device = $${args.length}`);
    }
    if (query.sinceMs !== undefined) {
      args.push(new Date(query.sinceMs).toISOString());
      where.push(`started_at >= $${args.length}`);
    }
    args.push(query.limit);
    const rows = await this.db.query<AuditRow>(
      `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${args.length}`,
      args,
    );
    return rows.map(auditRecordFromRow);
  }

  private async insert(start: AuditStart, outcome: AuditOutcome, endedAt: string | null, reason: string | null): Promise<number> {
    const [row] = await this.db.query<{ id: number }>(
      `INSERT INTO audit (actor, device, kind, what, outcome, started_at, ended_at, reason, replica)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
      [start.actor, start.device, start.kind, start.what, outcome, this.now().toISOString(), endedAt, reason, this.replica],
    );
    const id = row!.id;
    if (++this.inserts % AUDIT_PRUNE_EVERY === 0) await this.db.query('DELETE FROM audit WHERE id <= $1', [id - this.maxRecords]);
    return id;
  }
}
