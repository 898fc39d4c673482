/**
 * download-then-kill (the default): the old version keeps running while the
 * new image is pulled; then, in one swap step, the new version is created
 * beside it, the old one is stashed, and the new one starts under its name.
 * The app is down from the old one's stop until the new one's start.
 */
import type { Slot, SlotPlan } from '../slot.js';
import { pullTarget, replaceHolder } from './moves.js';

export function downloadThenKill(slot: Slot): SlotPlan {
  return slot.imagePresent ? replaceHolder(slot) : pullTarget(slot);
}
