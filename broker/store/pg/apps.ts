/**
 * The PostgreSQL engine of AppStore. Replicas may apply the same app at the same moment: each
 * apply holds a transaction-level advisory lock on the app's name, so revisions are numbered
 * without gaps or duplicates and an unchanged spec is recognised against the newest revision.
 */
import { type AppSpec, contentHash } from '../../../shared/index.js';
import type { AppStore, RevisionCause, StoredApp, StoredRevision } from '../apps.js';
import { type AppRow, appFromRow, type RevisionRow, revisionFromRow } from '../apps.js';
import { APP_LOCK_CLASS } from './advisory-locks.js';
import type { PgDatabase } from './database.js';

const CURRENT = `SELECT a.name, a.revision, r.spec, a.created_at, a.updated_at, a.force_revision
  FROM apps a JOIN app_revisions r ON r.app = a.name AND r.revision = a.revision`;
const REVISION_COLUMNS = 'revision, spec, spec_hash, created_at, cause';

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

  async list(): Promise<StoredApp[]> {
    return (await this.db.query<AppRow>(`${CURRENT} ORDER BY a.name`)).map(appFromRow);
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
