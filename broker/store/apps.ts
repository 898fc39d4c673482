/**
 * Apps and their immutable revisions. Applying the same spec twice is a
 * no-op (kubectl's "unchanged"); any change creates revision N+1.
 *
 * Invariants: revisions of an app are numbered 1, 2, 3… without gaps and are
 * never rewritten; the current revision is always the newest one (a rollback
 * is a new revision carrying an older spec, never a rewind); two consecutive
 * revisions never have the same spec hash.
 */
import { type AppSpec, contentHash } from '../../shared/index.js';
import type { Db } from './db.js';

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

interface RevisionRow {
  revision: number;
  spec: string;
  spec_hash: string;
  created_at: string;
  cause: string | null;
}

interface AppRow {
  name: string;
  revision: number;
  spec: string;
  created_at: string;
  updated_at: string;
  force_revision: number | null;
}

export class AppStore {
  private readonly selectAll;
  private readonly selectOne;
  private readonly selectHash;
  private readonly maxRevision;
  private readonly insertRevision;
  private readonly upsertApp;
  private readonly deleteApp;
  private readonly deleteRevisions;
  private readonly selectRevisions;
  private readonly selectRevision;
  private readonly selectPrevious;
  private readonly forceRevision;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    const current = `SELECT a.name, a.revision, r.spec, a.created_at, a.updated_at, a.force_revision
      FROM apps a JOIN app_revisions r ON r.app = a.name AND r.revision = a.revision`;
    this.selectAll = db.prepare<[], AppRow>(`${current} ORDER BY a.name`);
    this.selectOne = db.prepare<[string], AppRow>(`${current} WHERE a.name = ?`);
    this.selectHash = db.prepare<[string], { revision: number; spec_hash: string }>(
      'SELECT r.revision, r.spec_hash FROM apps a JOIN app_revisions r ON r.app = a.name AND r.revision = a.revision WHERE a.name = ?',
    );
    this.maxRevision = db.prepare<[string], { max: number | null }>('SELECT MAX(revision) AS max FROM app_revisions WHERE app = ?');
    this.insertRevision = db.prepare(
      'INSERT INTO app_revisions (app, revision, spec, spec_hash, created_at, cause) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.upsertApp = db.prepare(
      `INSERT INTO apps (name, revision, created_at, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET revision = excluded.revision, updated_at = excluded.updated_at`,
    );
    this.deleteApp = db.prepare('DELETE FROM apps WHERE name = ?');
    this.forceRevision = db.prepare('UPDATE apps SET force_revision = ? WHERE name = ?');
    this.deleteRevisions = db.prepare('DELETE FROM app_revisions WHERE app = ?');
    const revisionColumns = 'revision, spec, spec_hash, created_at, cause';
    this.selectRevisions = db.prepare<[string], RevisionRow>(
      `SELECT ${revisionColumns} FROM app_revisions WHERE app = ? ORDER BY revision DESC`,
    );
    this.selectRevision = db.prepare<[string, number], RevisionRow>(
      `SELECT ${revisionColumns} FROM app_revisions WHERE app = ? AND revision = ?`,
    );
    this.selectPrevious = db.prepare<[string, number], { revision: number | null }>(
      'SELECT MAX(revision) AS revision FROM app_revisions WHERE app = ? AND revision < ?',
    );
  }

  /**
   * Stores a validated spec as the app's new current revision, recording
   * `cause`; returns its revision and whether it differs from the current one
   * (when it does not, nothing is written and the current revision is returned).
   */
  apply(spec: AppSpec, cause: RevisionCause = 'apply', { evenIfUnchanged = false } = {}): { revision: number; changed: boolean } {
    const hash = contentHash(spec);
    return this.db.transaction(() => {
      const current = this.selectHash.get(spec.name);
      if (current && current.spec_hash === hash && !evenIfUnchanged) return { revision: current.revision, changed: false };
      const revision = (this.maxRevision.get(spec.name)?.max ?? 0) + 1;
      const at = this.now().toISOString();
      this.insertRevision.run(spec.name, revision, JSON.stringify(spec), hash, at, cause);
      this.upsertApp.run(spec.name, revision, at, at);
      return { revision, changed: true };
    })();
  }

  list(): StoredApp[] {
    return this.selectAll.all().map(toApp);
  }

  get(name: string): StoredApp | undefined {
    const row = this.selectOne.get(name);
    return row ? toApp(row) : undefined;
  }

  /** Every revision of an app, newest first; empty for an unknown app. */
  revisions(name: string): StoredRevision[] {
    return this.selectRevisions.all(name).map(toRevision);
  }

  revision(name: string, revision: number): StoredRevision | undefined {
    const row = this.selectRevision.get(name, revision);
    return row ? toRevision(row) : undefined;
  }

  /** The newest revision older than `revision`, if there is one. */
  previousRevision(name: string, revision: number): number | undefined {
    return this.selectPrevious.get(name, revision)?.revision ?? undefined;
  }

  /** Marks the current revision as forced: devices swap even while the app holds its update lock. */
  force(name: string): number | undefined {
    const app = this.get(name);
    if (!app) return undefined;
    this.forceRevision.run(app.revision, name);
    return app.revision;
  }

  delete(name: string): boolean {
    return this.db.transaction(() => {
      const deleted = this.deleteApp.run(name).changes > 0;
      this.deleteRevisions.run(name);
      return deleted;
    })();
  }
}

function toRevision(row: RevisionRow): StoredRevision {
  return {
    revision: row.revision,
    spec: JSON.parse(row.spec) as AppSpec,
    specHash: row.spec_hash,
    createdAt: row.created_at,
    cause: row.cause,
  };
}

function toApp(row: AppRow): StoredApp {
  return {
    name: row.name,
    revision: row.revision,
    forced: row.force_revision === row.revision,
    spec: JSON.parse(row.spec) as AppSpec,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
