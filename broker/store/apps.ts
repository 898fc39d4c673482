/**
 * Apps and their immutable revisions. Applying the same spec twice is a
 * no-op (kubectl's "unchanged"); any change creates revision N+1.
 *
 * Invariants: revisions of an app are numbered 1, 2, 3… without gaps and are
 * never rewritten; the current revision is always the newest one (a rollback
 * is a new revision carrying an older spec, never a rewind); two consecutive
 * revisions never have the same spec hash.
 */
import type { AppSpec } from '../../shared/index.js';

/** How a revision came to be, recorded with it (kubectl's CHANGE-CAUSE). */
export type RevisionCause = 'apply' | `rollback to ${number}` | `retry of ${number}`;

export interface StoredRevision {
  revision: number;
  spec: AppSpec;
  specHash: string;
  createdAt: string;
  /** Null for revisions stored before causes were recorded (schema version 1). */
  cause: string | null;
}

export interface StoredApp {
  name: string;
  revision: number;
  /** The operator forced this revision past the app's update lock. */
  forced: boolean;
  spec: AppSpec;
  createdAt: string;
  updatedAt: string;
}

/**
 * The apps and revisions of one hub (or of all replicas sharing a database).
 * Each method is one atomic step, so replicas applying the same app at once
 * still number its revisions without gaps or duplicates.
 */
export interface AppStore {
  /**
   * Stores a validated spec as the app's new current revision, recording
   * `cause`; returns its revision and whether it differs from the current one
   * (when it does not, nothing is written and the current revision is returned).
   */
  apply(spec: AppSpec, cause?: RevisionCause, options?: { evenIfUnchanged?: boolean }): Promise<{ revision: number; changed: boolean }>;
  list(): Promise<StoredApp[]>;
  get(name: string): Promise<StoredApp | undefined>;
  /** Every revision of an app, newest first; empty for an unknown app. */
  revisions(name: string): Promise<StoredRevision[]>;
  revision(name: string, revision: number): Promise<StoredRevision | undefined>;
  /** The newest revision older than `revision`, if there is one. */
  previousRevision(name: string, revision: number): Promise<number | undefined>;
  /** Marks the current revision as forced: devices swap even while the app holds its update lock; its revision, or undefined for an unknown app. */
  force(name: string): Promise<number | undefined>;
  delete(name: string): Promise<boolean>;
}

/** A row as both engines store it. */
export interface RevisionRow {
  revision: number;
  spec: string;
  spec_hash: string;
  created_at: string;
  cause: string | null;
}

/** An app with its current revision's spec, as both engines' queries read it. */
export interface AppRow {
  name: string;
  revision: number;
  spec: string;
  created_at: string;
  updated_at: string;
  force_revision: number | null;
}

export function revisionFromRow(row: RevisionRow): StoredRevision {
  return {
    revision: row.revision,
    spec: JSON.parse(row.spec) as AppSpec,
    specHash: row.spec_hash,
    createdAt: row.created_at,
    cause: row.cause,
  };
}

export function appFromRow(row: AppRow): StoredApp {
  return {
    name: row.name,
    revision: row.revision,
    forced: row.force_revision === row.revision,
    spec: JSON.parse(row.spec) as AppSpec,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
