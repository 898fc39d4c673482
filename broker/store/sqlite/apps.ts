/**
 * The SQLite engine of AppStore (hub.db). A set of specs (applySet) is one IMMEDIATE transaction:
 * the write lock is held from its first read to its commit, so the plan (app-sets.ts) is made on
 * rows no other connection changes meanwhile.
 */
import { type AppSpec, contentHash } from '../../../shared/index.js';
import {
  type AppSetOutcome,
  type AppSetRequest,
  CURRENT_APP_QUERY,
  type CurrentApp,
  type CurrentAppRow,
  currentAppFromRow,
  DryRunRollback,
  planAppSet,
  setOutcome,
} from '../app-sets.js';
import type { AppStore, RevisionCause, StoredApp, StoredRevision } from '../apps.js';
import { type AppRow, appFromRow, type RevisionRow, revisionFromRow } from '../apps.js';
import type { Db } from './db.js';

export class SqliteAppStore implements AppStore {
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
  private readonly selectScoped;
  private readonly selectCurrent;
  private readonly selectScope;
  private readonly insertSetRevision;
  private readonly upsertSetApp;
  private readonly updateScope;
  private readonly applySetOnce;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    const current = `SELECT a.name, a.revision, r.spec, a.created_at, a.updated_at, a.force_revision, a.scope
      FROM apps a JOIN app_revisions r ON r.app = a.name AND r.revision = a.revision`;
    this.selectAll = db.prepare<[], AppRow>(`${current} ORDER BY a.name`);
    this.selectScoped = db.prepare<[string], AppRow>(`${current} WHERE a.scope = ? ORDER BY a.name`);
    this.selectCurrent = db.prepare<[string], CurrentAppRow>(`${CURRENT_APP_QUERY} WHERE a.name = ?`);
    this.selectScope = db.prepare<[string], CurrentAppRow>(`${CURRENT_APP_QUERY} WHERE a.scope = ?`);
    this.insertSetRevision = db.prepare(
      'INSERT INTO app_revisions (app, revision, spec, spec_hash, created_at, cause, source) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.upsertSetApp = db.prepare(
      `INSERT INTO apps (name, revision, created_at, updated_at, scope) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET revision = excluded.revision, updated_at = excluded.updated_at, scope = excluded.scope`,
    );
    this.updateScope = db.prepare('UPDATE apps SET scope = ? WHERE name = ?');
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
    this.forceRevision = db.prepare<[string], { revision: number }>(
      'UPDATE apps SET force_revision = revision WHERE name = ? RETURNING revision',
    );
    this.deleteRevisions = db.prepare('DELETE FROM app_revisions WHERE app = ?');
    const revisionColumns = 'revision, spec, spec_hash, created_at, cause, source';
    this.selectRevisions = db.prepare<[string], RevisionRow>(
      `SELECT ${revisionColumns} FROM app_revisions WHERE app = ? ORDER BY revision DESC`,
    );
    this.selectRevision = db.prepare<[string, number], RevisionRow>(
      `SELECT ${revisionColumns} FROM app_revisions WHERE app = ? AND revision = ?`,
    );
    this.selectPrevious = db.prepare<[string, number], { revision: number | null }>(
      'SELECT MAX(revision) AS revision FROM app_revisions WHERE app = ? AND revision < ?',
    );
    this.applySetOnce = db.transaction((request: AppSetRequest, hashes: readonly string[]): AppSetOutcome => {
      const current = new Map<string, CurrentApp>();
      for (const spec of request.specs) {
        const row = this.selectCurrent.get(spec.name);
        if (row) current.set(spec.name, currentAppFromRow(row));
      }
      const scoped = request.prune && request.scope !== undefined ? this.selectScope.all(request.scope).map(currentAppFromRow) : [];
      const plan = planAppSet(request, hashes, current, scoped);
      const at = this.now().toISOString();
      for (const app of plan.apps) {
        if (app.write === 'revision') {
          this.insertSetRevision.run(
            app.spec.name,
            app.revision,
            JSON.stringify(app.spec),
            app.specHash,
            at,
            'apply',
            request.source ?? null,
          );
          this.upsertSetApp.run(app.spec.name, app.revision, at, at, app.scope);
        } else if (app.write === 'scope') {
          this.updateScope.run(app.scope, app.spec.name);
        }
      }
      for (const app of plan.prune) {
        this.deleteApp.run(app.name);
        this.deleteRevisions.run(app.name);
      }
      const outcome = setOutcome(plan, request.dryRun === true);
      if (request.dryRun) throw new DryRunRollback(outcome);
      return outcome;
    });
  }

  async applySet(request: AppSetRequest): Promise<AppSetOutcome> {
    const hashes = request.specs.map((spec) => contentHash(spec));
    try {
      return this.applySetOnce.immediate(request, hashes);
    } catch (err) {
      if (err instanceof DryRunRollback) return err.outcome;
      throw err;
    }
  }

  async apply(
    spec: AppSpec,
    cause: RevisionCause = 'apply',
    { evenIfUnchanged = false } = {},
  ): Promise<{ revision: number; changed: boolean }> {
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

  async list({ scope }: { scope?: string | undefined } = {}): Promise<StoredApp[]> {
    return (scope === undefined ? this.selectAll.all() : this.selectScoped.all(scope)).map(appFromRow);
  }

  async get(name: string): Promise<StoredApp | undefined> {
    const row = this.selectOne.get(name);
    return row ? appFromRow(row) : undefined;
  }

  async revisions(name: string): Promise<StoredRevision[]> {
    return this.selectRevisions.all(name).map(revisionFromRow);
  }

  async revision(name: string, revision: number): Promise<StoredRevision | undefined> {
    const row = this.selectRevision.get(name, revision);
    return row ? revisionFromRow(row) : undefined;
  }

  async previousRevision(name: string, revision: number): Promise<number | undefined> {
    return this.selectPrevious.get(name, revision)?.revision ?? undefined;
  }

  async force(name: string): Promise<number | undefined> {
    return this.forceRevision.get(name)?.revision;
  }

  async delete(name: string): Promise<boolean> {
    return this.db.transaction(() => {
      const deleted = this.deleteApp.run(name).changes > 0;
      this.deleteRevisions.run(name);
      return deleted;
    })();
  }
}
