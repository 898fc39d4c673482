/** The SQLite engine of RolloutStore (hub.db). */
import type { Rollout } from '../../dispatcher/rollout-plan.js';
import type { RolloutStore } from '../rollouts.js';
import type { Db } from './db.js';

export class SqliteRolloutStore implements RolloutStore {
  private readonly selectOne;
  private readonly selectActive;
  private readonly upsert;
  private readonly replace;
  private readonly remove;

  constructor(db: Db) {
    this.selectOne = db.prepare<[string], { doc: string }>('SELECT doc FROM rollouts WHERE app = ?');
    this.selectActive = db.prepare<[], { doc: string }>("SELECT doc FROM rollouts WHERE phase IN ('progressing', 'paused') ORDER BY app");
    this.upsert = db.prepare(
      `INSERT INTO rollouts (app, revision, phase, doc, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(app) DO UPDATE SET revision = excluded.revision, phase = excluded.phase, doc = excluded.doc, updated_at = excluded.updated_at`,
    );
    this.replace = db.prepare('UPDATE rollouts SET revision = ?, phase = ?, doc = ?, updated_at = ? WHERE app = ? AND doc = ?');
    this.remove = db.prepare('DELETE FROM rollouts WHERE app = ?');
  }

  async get(app: string): Promise<Rollout | undefined> {
    const row = this.selectOne.get(app);
    return row ? (JSON.parse(row.doc) as Rollout) : undefined;
  }

  async active(): Promise<Rollout[]> {
    return this.selectActive.all().map((row) => JSON.parse(row.doc) as Rollout);
  }

  async save(rollout: Rollout, replacing?: Rollout): Promise<boolean> {
    const doc = JSON.stringify(rollout);
    if (replacing === undefined) return this.upsert.run(rollout.app, rollout.revision, rollout.phase, doc, rollout.updatedAt).changes > 0;
    return this.replace.run(rollout.revision, rollout.phase, doc, rollout.updatedAt, rollout.app, JSON.stringify(replacing)).changes > 0;
  }

  async delete(app: string): Promise<void> {
    this.remove.run(app);
  }
}
