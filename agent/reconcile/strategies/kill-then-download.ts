/**
 * kill-then-download: the committed version is stashed before the pull, for
 * devices short on disk (its image may then be the only one that has to go).
 * Any other holder of the name (nothing to keep for a rollback) stays until
 * the image is present, as with download-then-kill. Stopping first, it cannot
 * pull ahead of an update window: it waits for the window, then stops and pulls.
 */
import { keepsHolder, type Slot, type SlotPlan } from '../slot.js';
import { pullTarget, replaceHolder, stashBeforePull } from './moves.js';

export function killThenDownload(slot: Slot): SlotPlan {
  if (slot.imagePresent) return replaceHolder(slot);
  // An image that does not fit leaves the running version alone: stopping it would not make the room.
  if (slot.imageDoesNotFit || !keepsHolder(slot)) return pullTarget(slot);
  return stashBeforePull(slot);
}
