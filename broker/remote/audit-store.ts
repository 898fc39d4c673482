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

export const AUDIT_MAX_RECORDS = 100_000;
/** Pruning every insert would be a delete per session; every this many inserts keeps the table within a few rows of the bound. */
export const AUDIT_PRUNE_EVERY = 100;

export type AuditKind = AuditRecord['kind'];
export type AuditOutcome = AuditRecord['outcome'];
/** How a session ended whose hub (or replica) stopped while it ran. */
export const HUB_LOST: AuditOutcome = 'hub_lost';
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

export interface AuditStore {
  /** A session the device opened; returns its record's id. */
  opened(start: AuditStart): Promise<number>;
  /** A refused attempt, ended as it started. */
  denied(start: AuditStart, reason: string): Promise<number>;
  /** A session that never ran (the device refused it, was offline or did not answer): one record, already ended. */
  failed(start: AuditStart, reason: string): Promise<number>;
  ended(id: number, end: AuditEnd): Promise<void>;
  /**
   * Sessions still `open` when the hub starts were cut by a hub that stopped
   * without closing them (a crash, a kill): nothing relays them any more.
   * They end as `hub_lost`.
   */
  closeOrphans(reason: string): Promise<number>;
  /** The replicas that relay the sessions still `open` (a replica names itself in the rows it opens). */
  openReplicas(): Promise<string[]>;
  /** Ends as `hub_lost` the sessions still `open` that `replica` relayed: it is gone, and nothing relays them any more. */
  closeOrphansOf(replica: string, reason: string): Promise<number>;
  /** Newest first. */
  list(query: AuditQuery): Promise<AuditRecord[]>;
}

/** A row as both engines store it. */
export interface AuditRow {
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
  /** The replica that relays the session; NULL on a single hub's file. */
  replica: string | null;
}

export function auditRecordFromRow(row: AuditRow): AuditRecord {
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
