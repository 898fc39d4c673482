/**
 * The newest rollout of each app, stored whole as the state machine returns
 * it. A new revision replaces its app's row; deleting the app deletes it.
 */
import type { Rollout } from '../dispatcher/rollout-plan.js';
import type { Db } from './db.js';

export class RolloutStore {
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

  get(app: string): Rollout | undefined {
    const row = this.selectOne.get(app);
    return row ? (JSON.parse(row.doc) as Rollout) : undefined;
  }

  /** Rollouts that still move: progressing or paused. */
  active(): Rollout[] {
    return this.selectActive.all().map((row) => JSON.parse(row.doc) as Rollout);
  }

  save(rollout: Rollout): void {
    this.upsert.run(rollout.app, rollout.revision, rollout.phase, JSON.stringify(rollout), rollout.updatedAt);
  }

  delete(app: string): void {
    this.remove.run(app);
  }
}
