/**
 * An operator's pause, resume or abort of a stored rollout, for apps and agent targets alike.
 * The leader may advance the rollout between the read and the write: the save is conditional
 * on what was read (RolloutStore.save), and the step is taken again on what the leader wrote,
 * so no step of either is lost or taken twice.
 */
import type { RolloutStore } from '../store/rollouts.js';
import { ApiError } from './errors.js';
import { type Rollout, RolloutTransitionError } from './rollout-plan.js';

/** A transition that keeps meeting a change to the rollout gives up after this many tries. */
const MAX_TRANSITION_ATTEMPTS = 3;

/**
 * Reads the rollout with `read`, takes `step` on it and saves the result; the rollout as saved.
 * `subject` names what the rollout is of in errors (`app "web"`, `agent target "site-lab"`).
 */
export async function saveTransition(
  subject: string,
  read: () => Promise<Rollout>,
  step: (rollout: Rollout, now: Date) => Rollout,
  store: RolloutStore,
  now: () => Date,
): Promise<Rollout> {
  for (let attempt = 1; ; attempt++) {
    const current = await read();
    let next: Rollout;
    try {
      next = step(current, now());
    } catch (err) {
      if (err instanceof RolloutTransitionError) throw new ApiError('invalid_request', `${subject}: ${err.message}`);
      throw err;
    }
    if (await store.save(next, current)) return next;
    if (attempt === MAX_TRANSITION_ATTEMPTS) {
      throw new ApiError('conflict', `${subject}: its rollout kept changing while this was being done; try again`);
    }
  }
}
