/**
 * The moves every update strategy is made of, for a slot where nothing runs
 * the target spec yet. A strategy is the order it makes them in.
 */
import type { ManagedContainer } from '../../runtime/runtime.js';
import { isKept, isLockedOut, keepsHolder, retire, type Slot, type SlotPlan, stashHolder, steps, swapHolder } from '../slot.js';

/**
 * Pull the target's image; one that does not fit on disk waits for image GC to make room, the running version untouched.
 * Pulled for an update its window holds, it is fetched ahead, behind what other apps and jobs need now (image-puller.ts).
 */
export function pullTarget(slot: Slot): SlotPlan {
  if (slot.imageDoesNotFit) return { steps: [], needsRoom: true };
  const { image, auth } = slot.target.spec;
  const { app } = slot;
  return steps({
    ...slot.base,
    action: 'pull',
    image,
    ...(auth ? { auth } : {}),
    appRevision: slot.target.candidate ? app.revision : (slot.committed.revision ?? app.revision),
    ...(app.update?.pull === 'engine' ? { via: 'engine' as const } : {}),
    ...(slot.waitsForWindow ? { ahead: true } : {}),
    reason: slot.holder ? `spec changed: pulling ${image} before replacing the running container` : 'image not present',
  });
}

/**
 * With the target's image present: the version under the primary name makes
 * way, left alone while the app holds its update lock. One a rollback may
 * need is swapped out in the same step the target starts in (stashed, the
 * app down only from its stop to the new one's start); any other is retired,
 * and once the name is free, the target is run. While the app's update waits
 * for its window nothing of the new version is run, even where no old one
 * holds the name (a container the revision adds).
 */
export function replaceHolder(slot: Slot): SlotPlan {
  const { holder } = slot;
  if (slot.waitsForWindow) return steps();
  if (!holder) return runTarget(slot);
  // Locked: nothing to do until the app releases its lock.
  if (isLockedOut(slot)) return steps();
  if (!keepsHolder(slot)) return steps(retire(holder, 'spec changed: replacing container'));
  return steps(
    ...leaving(slot).map((c) => retire(c, 'not the version to run')),
    swapHolder(slot, holder, 'spec changed: the new version replaces the running one, kept aside until the new one is healthy'),
  );
}

/** Stop the committed version before the pull: for devices without room for two images. Not before the update window opens. */
export function stashBeforePull(slot: Slot): SlotPlan {
  if (!slot.holder || isLockedOut(slot) || slot.waitsForWindow) return steps();
  return steps(stashHolder(slot, slot.holder, 'kill-then-download: stopping the running version before pulling'));
}

/** Containers of other specs than the target, except the version kept for a rollback (and the one being swapped out). */
function leaving(slot: Slot): ManagedContainer[] {
  return slot.others.filter((c) => c !== slot.holder && !(slot.target.candidate && isKept(c, slot.committed.hash)));
}

/** Create and start the target under the primary name; containers of other specs go, except the version kept for a rollback. */
function runTarget(slot: Slot): SlotPlan {
  const { app, target } = slot;
  return steps(...leaving(slot).map((c) => retire(c, 'not the version to run')), {
    ...slot.base,
    action: 'run',
    appRevision: target.candidate ? app.revision : (slot.committed.revision ?? app.revision),
    specHash: target.hash,
    spec: target.spec,
    reason: slot.rolledBackReason !== undefined ? 'rolling back: recreating the previous version' : 'not running',
  });
}
