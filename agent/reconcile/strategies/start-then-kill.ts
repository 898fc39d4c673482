/**
 * start-then-kill: the new version is created beside the running old one,
 * under a `.next-` name, and runs its trial there; once committed the old one
 * is drained and stopped, and the new one takes the name (plan-slot.ts), so
 * there is no moment without a running version. Without a running old version
 * to keep serving, or when going back to the committed version, it replaces as
 * download-then-kill does.
 */
import { isActive, nextName, type Slot, type SlotPlan, steps } from '../slot.js';
import { pullTarget, replaceHolder } from './moves.js';

export function startThenKill(slot: Slot): SlotPlan {
  if (!slot.imagePresent) return pullTarget(slot);
  // Pulled ahead, but not started beside the old version before the update window opens.
  if (slot.waitsForWindow) return steps();
  const { holder, target } = slot;
  if (!holder || !target.candidate || !isActive(holder)) return replaceHolder(slot);
  return steps({
    ...slot.base,
    action: 'run',
    name: nextName(slot.primary, target.hash),
    appRevision: slot.app.revision,
    specHash: target.hash,
    spec: target.spec,
    reason: 'start-then-kill: starting the new version beside the running one',
  });
}
