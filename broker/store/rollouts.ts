/**
 * The newest rollout of each app, stored whole as the state machine returns
 * it. A new revision replaces its app's row; deleting the app deletes it.
 */
import type { Rollout } from '../dispatcher/rollout-plan.js';

export interface RolloutStore {
  get(app: string): Promise<Rollout | undefined>;
  /** Rollouts that still move: progressing or paused, ordered by app. */
  active(): Promise<Rollout[]>;
  /**
   * Stores `rollout` as its app's newest. Given `replacing` (the rollout as
   * it was read), only if that is still what is stored: false, and nothing
   * written, when another writer (another replica, an operator) changed it
   * meanwhile, so no step is taken twice or lost.
   */
  save(rollout: Rollout, replacing?: Rollout): Promise<boolean>;
  delete(app: string): Promise<void>;
}
