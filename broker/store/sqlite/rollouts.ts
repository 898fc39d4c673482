/** The SQLite engine of RolloutStore (hub.db). */
import type { Rollout } from '../../dispatcher/rollout-plan.js';
import type { RolloutStore } from '../rollouts.js';
import type { Db } from './db.js';

export class SqliteRolloutStore implements RolloutStore {
  private readonly selectOne;
  private readonly selectActive;
  private readonly upsert;
  private readonly remove;

  constructor(db: Db) {
    this.selectOne = db.prepare<[string], { doc: string }>('SELECT doc FROM rollouts WHERE app = ?');
    this.selectActive = db.prepare<[], { doc: string }>("SELECT doc FROM rollouts WHERE phase IN ('progressing', 'paused') ORDER BY app");
    this.upsert = db.prepare(
      `INSERT INTO rollouts (app, revision, phase, doc, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(app) DO UPDATE SET revision = excluded.revision, phase = excluded.phase, doc = excluded.doc, updated_at = excluded.updated_at`,
    );
    this.remove = db.prepare('DELETE FROM rollouts WHERE app = ?');
  }

  async get(app: string): Promise<Rollout | undefined> {
    const row = this.selectOne.get(app);
    return row ? (JSON.parse(row.doc) as Rollout) : undefined;
  }

  async active(): Promise<Rollout[]> {
    return this.selectActive.all().map((row) => JSON.parse(row.doc) as Rollout);
  }

  async save(rollout: Rollout): Promise<void> {
    this.upsert.run(rollout.app, rollout.revision, rollout.phase, JSON.stringify(rollout), rollout.updatedAt);
  }

  async delete(app: string): Promise<void> {
    this.remove.run(app);
  }
}
