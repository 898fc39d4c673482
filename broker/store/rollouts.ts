/**
 * The newest rollout of each app, stored whole as the state machine returns
 * it. A new revision replaces its app's row; deleting the app deletes it.
 */
import type { Rollout } from '../dispatcher/rollout-plan.js';

export interface RolloutStore {
  get(app: string): Promise<Rollout | undefined>;
  /** Rollouts that still move: progressing or paused, ordered by app. */
  active(): Promise<Rollout[]>;
  save(rollout: Rollout): Promise<void>;
  delete(app: string): Promise<void>;
}
