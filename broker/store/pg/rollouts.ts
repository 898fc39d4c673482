/** The PostgreSQL engine of RolloutStore. */
import type { Rollout } from '../../dispatcher/rollout-plan.js';
import type { RolloutStore } from '../rollouts.js';
import type { PgDatabase } from './database.js';

export class PgRolloutStore implements RolloutStore {
  constructor(private readonly db: PgDatabase) {}

  async get(app: string): Promise<Rollout | undefined> {
    const [row] = await this.db.query<{ doc: string }>('SELECT doc FROM rollouts WHERE app = $1', [app]);
    return row ? (JSON.parse(row.doc) as Rollout) : undefined;
  }

  async active(): Promise<Rollout[]> {
    const rows = await this.db.query<{ doc: string }>("SELECT doc FROM rollouts WHERE phase IN ('progressing', 'paused') ORDER BY app");
    return rows.map((row) => JSON.parse(row.doc) as Rollout);
  }

  async save(rollout: Rollout, replacing?: Rollout): Promise<boolean> {
    const doc = JSON.stringify(rollout);
    if (replacing !== undefined) {
      const replaced = await this.db.query(
        'UPDATE rollouts SET revision = $1, phase = $2, doc = $3, updated_at = $4 WHERE app = $5 AND doc = $6 RETURNING app',
        [rollout.revision, rollout.phase, doc, rollout.updatedAt, rollout.app, JSON.stringify(replacing)],
      );
      return replaced.length > 0;
    }
    await this.db.query(
      `INSERT INTO rollouts (app, revision, phase, doc, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (app) DO UPDATE SET revision = EXCLUDED.revision, phase = EXCLUDED.phase, doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at`,
      [rollout.app, rollout.revision, rollout.phase, doc, rollout.updatedAt],
    );
    return true;
  }

  async delete(app: string): Promise<void> {
    await this.db.query('DELETE FROM rollouts WHERE app = $1', [app]);
  }
}
