/**
 * Apps and their immutable revisions. Applying the same spec twice is a
 * no-op (kubectl's "unchanged"); any change creates revision N+1.
 *
 * Invariants: revisions of an app are numbered 1, 2, 3… without gaps and are
 * never rewritten; the current revision is always the newest one (a rollback
 * is a new revision carrying an older spec, never a rewind); two consecutive
 * revisions never have the same spec hash.
 *
 * An app may carry a prune scope (`apps.applyAll`'s `scope`): the name of the folder of specs it
 * was applied from, so a prune of that folder deletes only its own apps (app-sets.ts).
 */
import type { AppSpec } from '../../shared/index.js';
import type { AppSetOutcome, AppSetRequest } from './app-sets.js';

/** How a revision came to be, recorded with it (kubectl's CHANGE-CAUSE). */
export type RevisionCause = 'apply' | `rollback to ${number}` | `retry of ${number}`;

export interface StoredRevision {
  revision: number;
  spec: AppSpec;
  specHash: string;
  createdAt: string;
  /** Null for revisions stored before causes were recorded (schema version 1). */
  cause: string | null;
  /** Where the spec came from (`git:<commit>`), as the set that made it said; null when none was given. */
  source: string | null;
}

export interface StoredApp {
  name: string;
  revision: number;
  /** The operator forced this revision past the app's update lock. */
  forced: boolean;
  spec: AppSpec;
  createdAt: string;
  updatedAt: string;
  /** The prune scope the app was applied under; null for none. */
  scope: string | null;
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
  /**
   * Applies a set of validated specs as one transaction (app-sets.ts): a new revision for each
   * changed spec, the scope recorded, the scope's other apps pruned when asked; all or nothing.
   * Throws ScopeConflictError or PruneMismatchError and stores nothing when the set is refused.
   * A dry run runs the same statements and rolls them back.
   */
  applySet(request: AppSetRequest): Promise<AppSetOutcome>;
  /** Every app by name in byte order; with `scope`, only the apps recorded with it. */
  list(filter?: { scope?: string | undefined }): Promise<StoredApp[]>;
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
  source: string | null;
}

/** An app with its current revision's spec, as both engines' queries read it. */
export interface AppRow {
  name: string;
  revision: number;
  spec: string;
  created_at: string;
  updated_at: string;
  force_revision: number | null;
  scope: string | null;
}

export function revisionFromRow(row: RevisionRow): StoredRevision {
  return {
    revision: row.revision,
    spec: JSON.parse(row.spec) as AppSpec,
    specHash: row.spec_hash,
    createdAt: row.created_at,
    cause: row.cause,
    source: row.source,
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
    scope: row.scope,
  };
}
