/**
 * The PostgreSQL engine of AppStore. Replicas may apply the same app at the same moment: each
 * apply holds a transaction-level advisory lock on the app's name, so revisions are numbered
 * without gaps or duplicates and an unchanged spec is recognised against the newest revision.
 *
 * A set of specs (applySet) takes, in this order: its scope's lock when it records a scope
 * (SCOPE_LOCK_CLASS), then the locks of every app it names or may prune, all at once in ascending
 * key order. Every writer takes at most one scope lock and takes it before any app lock, and app
 * locks only ever in ascending order, so two sets, or a set and single applies, never wait on each
 * other in a cycle. (Ordered by key, not by name: two names may hash to one key.)
 */
import { type AppSpec, contentHash } from '../../../shared/index.js';
import {
  type AppSetOutcome,
  type AppSetPlan,
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
import { APP_LOCK_CLASS, SCOPE_LOCK_CLASS } from './advisory-locks.js';
import type { PgDatabase, PgQueryable } from './database.js';

const CURRENT = `SELECT a.name, a.revision, r.spec, a.created_at, a.updated_at, a.force_revision, a.scope
  FROM apps a JOIN app_revisions r ON r.app = a.name AND r.revision = a.revision`;
const REVISION_COLUMNS = 'revision, spec, spec_hash, created_at, cause, source';

export class PgAppStore implements AppStore {
  constructor(
    private readonly db: PgDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async apply(
    spec: AppSpec,
    cause: RevisionCause = 'apply',
    { evenIfUnchanged = false } = {},
  ): Promise<{ revision: number; changed: boolean }> {
    const hash = contentHash(spec);
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [APP_LOCK_CLASS, spec.name]);
      const [current] = await tx.query<{ revision: number; spec_hash: string }>(
        'SELECT r.revision, r.spec_hash FROM apps a JOIN app_revisions r ON r.app = a.name AND r.revision = a.revision WHERE a.name = $1',
        [spec.name],
      );
      if (current && current.spec_hash === hash && !evenIfUnchanged) return { revision: current.revision, changed: false };
      const [max] = await tx.query<{ max: number | null }>('SELECT max(revision) AS max FROM app_revisions WHERE app = $1', [spec.name]);
      const revision = (max?.max ?? 0) + 1;
      const at = this.now().toISOString();
      await tx.query('INSERT INTO app_revisions (app, revision, spec, spec_hash, created_at, cause) VALUES ($1, $2, $3, $4, $5, $6)', [
        spec.name,
        revision,
        JSON.stringify(spec),
        hash,
        at,
        cause,
      ]);
      await tx.query(
        `INSERT INTO apps (name, revision, created_at, updated_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (name) DO UPDATE SET revision = EXCLUDED.revision, updated_at = EXCLUDED.updated_at`,
        [spec.name, revision, at],
      );
      return { revision, changed: true };
    });
  }

  async applySet(request: AppSetRequest): Promise<AppSetOutcome> {
    const hashes = request.specs.map((spec) => contentHash(spec));
    try {
      return await this.db.transaction(async (tx) => {
        const { scope } = request;
        if (scope !== undefined) await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [SCOPE_LOCK_CLASS, scope]);
        const pruning = request.prune === true && scope !== undefined;
        const names = request.specs.map((spec) => spec.name);
        // Under the scope's lock no other writer adds an app to it: these are all the apps a prune may delete.
        const scopedNames = pruning
          ? (await tx.query<{ name: string }>('SELECT name FROM apps WHERE scope = $1', [scope])).map((r) => r.name)
          : [];
        await lockApps(tx, [...names, ...scopedNames]);
        const current = new Map<string, CurrentApp>();
        for (const row of await tx.query<CurrentAppRow>(`${CURRENT_APP_QUERY} WHERE a.name = ANY($1::text[])`, [names]))
          current.set(row.name, currentAppFromRow(row));
        const scoped = pruning
          ? (await tx.query<CurrentAppRow>(`${CURRENT_APP_QUERY} WHERE a.scope = $1`, [scope])).map(currentAppFromRow)
          : [];
        const plan = planAppSet(request, hashes, current, scoped);
        await writePlan(tx, plan, this.now().toISOString(), request.source ?? null);
        const outcome = setOutcome(plan, request.dryRun === true);
        if (request.dryRun) throw new DryRunRollback(outcome);
        return outcome;
      });
    } catch (err) {
      if (err instanceof DryRunRollback) return err.outcome;
      throw err;
    }
  }

  async list({ scope }: { scope?: string | undefined } = {}): Promise<StoredApp[]> {
    const rows =
      scope === undefined
        ? await this.db.query<AppRow>(`${CURRENT} ORDER BY a.name`)
        : await this.db.query<AppRow>(`${CURRENT} WHERE a.scope = $1 ORDER BY a.name`, [scope]);
    return rows.map(appFromRow);
  }

  async get(name: string): Promise<StoredApp | undefined> {
    const [row] = await this.db.query<AppRow>(`${CURRENT} WHERE a.name = $1`, [name]);
    return row ? appFromRow(row) : undefined;
  }

  async revisions(name: string): Promise<StoredRevision[]> {
    const rows = await this.db.query<RevisionRow>(`SELECT ${REVISION_COLUMNS} FROM app_revisions WHERE app = $1 ORDER BY revision DESC`, [
      name,
    ]);
    return rows.map(revisionFromRow);
  }

  async revision(name: string, revision: number): Promise<StoredRevision | undefined> {
    const [row] = await this.db.query<RevisionRow>(`SELECT ${REVISION_COLUMNS} FROM app_revisions WHERE app = $1 AND revision = $2`, [
      name,
      revision,
    ]);
    return row ? revisionFromRow(row) : undefined;
  }

  async previousRevision(name: string, revision: number): Promise<number | undefined> {
    const [row] = await this.db.query<{ revision: number | null }>(
      'SELECT max(revision) AS revision FROM app_revisions WHERE app = $1 AND revision < $2',
      [name, revision],
    );
    return row?.revision ?? undefined;
  }

  async force(name: string): Promise<number | undefined> {
    const [row] = await this.db.query<{ revision: number }>(
      'UPDATE apps SET force_revision = revision WHERE name = $1 RETURNING revision',
      [name],
    );
    return row?.revision;
  }

  async delete(name: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const deleted = await tx.query('DELETE FROM apps WHERE name = $1 RETURNING name', [name]);
      await tx.query('DELETE FROM app_revisions WHERE app = $1', [name]);
      return deleted.length > 0;
    });
  }
}

/** Every app lock of `names`, each key once, in ascending key order: the function scan locks row by row in the array's order. */
async function lockApps(tx: PgQueryable, names: readonly string[]): Promise<void> {
  const keys = await tx.query<{ key: number }>('SELECT DISTINCT hashtext(n) AS key FROM unnest($1::text[]) AS n ORDER BY key', [names]);
  await tx.query('SELECT pg_advisory_xact_lock($1, key) FROM unnest($2::int[]) AS key', [APP_LOCK_CLASS, keys.map((k) => k.key)]);
}

/** A set's writes, each kind one statement however many apps it holds. */
async function writePlan(tx: PgQueryable, plan: AppSetPlan, at: string, source: string | null): Promise<void> {
  const revised = plan.apps.filter((app) => app.write === 'revision');
  if (revised.length > 0) {
    await tx.query(
      `INSERT INTO app_revisions (app, revision, spec, spec_hash, created_at, cause, source)
       SELECT app, revision, spec, spec_hash, $5::text, 'apply', $6::text FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])
         AS t (app, revision, spec, spec_hash)`,
      [
        revised.map((a) => a.spec.name),
        revised.map((a) => a.revision),
        revised.map((a) => JSON.stringify(a.spec)),
        revised.map((a) => a.specHash),
        at,
        source,
      ],
    );
    await tx.query(
      `INSERT INTO apps (name, revision, created_at, updated_at, scope)
       SELECT name, revision, $4::text, $4::text, scope FROM unnest($1::text[], $2::bigint[], $3::text[]) AS t (name, revision, scope)
       ON CONFLICT (name) DO UPDATE SET revision = EXCLUDED.revision, updated_at = EXCLUDED.updated_at, scope = EXCLUDED.scope`,
      [revised.map((a) => a.spec.name), revised.map((a) => a.revision), revised.map((a) => a.scope), at],
    );
  }
  const adopted = plan.apps.filter((app) => app.write === 'scope');
  if (adopted.length > 0) {
    await tx.query('UPDATE apps SET scope = t.scope FROM unnest($1::text[], $2::text[]) AS t (name, scope) WHERE apps.name = t.name', [
      adopted.map((a) => a.spec.name),
      adopted.map((a) => a.scope),
    ]);
  }
  const pruned = plan.prune.map((app) => app.name);
  if (pruned.length > 0) {
    await tx.query('DELETE FROM apps WHERE name = ANY($1::text[])', [pruned]);
    await tx.query('DELETE FROM app_revisions WHERE app = ANY($1::text[])', [pruned]);
  }
}
