/**
 * The moves every update strategy is made of, for a slot where nothing runs
 * the target spec yet. A strategy is the order it makes them in.
 */
import { isKept, isLockedOut, keepsHolder, retire, type Slot, type SlotPlan, stashHolder, steps } from '../slot.js';

/** Pull the target's image; one that does not fit on disk waits for image GC to make room, the running version untouched. */
export function pullTarget(slot: Slot): SlotPlan {
  if (slot.imageDoesNotFit) return { steps: [], needsRoom: true };
  const { image, auth } = slot.target.spec;
  return steps({
    ...slot.base,
    action: 'pull',
    image,
    ...(auth ? { auth } : {}),
    reason: slot.holder ? `spec changed: pulling ${image} before replacing the running container` : 'image not present',
  });
}

/**
 * With the target's image present: the version under the primary name makes
 * way (stashed while a rollback may need it, retired otherwise, left alone
 * while the app holds its update lock); once the name is free, the target is created.
 */
export function replaceHolder(slot: Slot): SlotPlan {
  const { holder } = slot;
  if (!holder) return createTarget(slot);
  // Locked: nothing to do until the app releases its lock.
  if (isLockedOut(slot)) return steps();
  return steps(
    keepsHolder(slot)
      ? stashHolder(slot, holder, 'spec changed: keeping the running version aside until the new one is healthy')
      : retire(holder, 'spec changed: replacing container'),
  );
}

/** Stop the committed version before the pull: for devices without room for two images. */
export function stashBeforePull(slot: Slot): SlotPlan {
  if (!slot.holder || isLockedOut(slot)) return steps();
  return steps(stashHolder(slot, slot.holder, 'kill-then-download: stopping the running version before pulling'));
}

/** Create the target under the primary name; containers of other specs go, except the version kept for a rollback. */
function createTarget(slot: Slot): SlotPlan {
  const { app, target } = slot;
  const leaving = slot.others.filter((c) => !(target.candidate && isKept(c, slot.committed.hash)));
  return steps(...leaving.map((c) => retire(c, 'not the version to run')), {
    ...slot.base,
    action: 'create',
    appRevision: target.candidate ? app.revision : (slot.committed.revision ?? app.revision),
    specHash: target.hash,
    spec: target.spec,
    reason: slot.rolledBackReason !== undefined ? 'rolling back: recreating the previous version' : 'not running',
  });
}
