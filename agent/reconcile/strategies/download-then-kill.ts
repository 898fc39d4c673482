/**
 * download-then-kill (the default): the old version keeps running while the
 * new image is pulled, then is stashed, and the new version is created under
 * its name. The app is down from the stash until the new version starts.
 */
import type { Slot, SlotPlan } from '../slot.js';
import { pullTarget, replaceHolder } from './moves.js';

export function downloadThenKill(slot: Slot): SlotPlan {
  return slot.imagePresent ? replaceHolder(slot) : pullTarget(slot);
}
