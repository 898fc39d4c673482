/**
 * What one container slot does next. The parts every strategy shares live
 * here: duplicates go, a version set aside is brought back under its name, a
 * target that runs is started and put through its gate; only while nothing
 * runs the target does the app's strategy decide (strategies/).
 */
import { restartPolicyOf } from '../runtime/create-options.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import { incomingName, isActive, isKept, retire, type Slot, type SlotPlan, steps } from './slot.js';
import { strategies, trialsBeside } from './strategies/index.js';

export function planSlot(slot: Slot): SlotPlan {
  const duplicates = slot.duplicates.map((extra) => retire(extra, 'duplicate of a container with the same spec'));
  const next = nextMove(slot);
  return { ...next, steps: [...duplicates, ...next.steps], gateOpen: slot.gateOpen };
}

function nextMove(slot: Slot): SlotPlan {
  const { mine } = slot;
  if (!mine) return strategies[slot.strategy](slot);
  // A swap cut short (the agent killed, the engine gone) before the new
  // version took the name: it never ran, so it goes and the swap runs again,
  // with its start under the primary name where the gate judges it.
  if (mine.dockerName === incomingName(slot.primary, mine.specHash)) {
    return steps(retire(mine, 'a swap was cut short before the new version started: it is swapped in again'));
  }
  const onTrialBeside = slot.target.candidate && trialsBeside(slot.strategy);
  if (mine.dockerName !== slot.primary && !onTrialBeside) return bringBack(slot, mine);
  return settle(slot, mine);
}

/**
 * The version to run sits aside (stashed, or a start-then-kill version beside
 * the old one): free its name, then give it the name back.
 */
function bringBack(slot: Slot, mine: ManagedContainer): SlotPlan {
  const promoted = mine.dockerName.startsWith(`${slot.primary}.next-`);
  const why =
    slot.rolledBackReason !== undefined
      ? { old: `rolled back: ${slot.rolledBackReason}`, mine: 'rolling back to the previous version' }
      : promoted
        ? { old: 'start-then-kill: the new version is healthy', mine: 'start-then-kill: the new version takes the name' }
        : { old: 'replaced by the kept version', mine: 'restoring the kept version' };
  if (slot.holder) {
    const step = retire(slot.holder, why.old);
    // Hand over without a failed request: the old one leaves the network (and its alias) before it stops.
    return steps(promoted && step.action === 'stop' ? { ...step, drain: true } : step);
  }
  return steps({
    ...slot.base,
    action: 'restore',
    id: mine.id,
    name: slot.primary,
    restartPolicy: restartPolicyOf(slot.target.spec),
    reason: why.mine,
  });
}

/** The target runs (or was created): start it, judge a candidate by its gate, and retire what it replaces. */
function settle(slot: Slot, mine: ManagedContainer): SlotPlan {
  const { target, verdict } = slot;
  // A candidate the engine could not start goes to its gate's verdict (unhealthy) rather than to another start.
  if (mine.state === 'created' && verdict?.status !== 'unhealthy') {
    return steps({ ...slot.base, action: 'start', id: mine.id, reason: 'created but not started' });
  }
  // The engine stopped it as it went away and did not start it again (no restart policy brings it back): the trial resumes once it runs.
  if (verdict?.stoppedByEngine && !isActive(mine)) {
    return steps({ ...slot.base, action: 'start', id: mine.id, reason: 'stopped by the engine while on trial' });
  }
  if (!target.candidate) return steps(...slot.others.map((c) => retire(c, 'previous version no longer needed')));
  // While the gate is pending, the stashed previous version stays until it decides.
  const superseded = slot.others.filter((c) => !isKept(c, slot.committed.hash)).map((c) => retire(c, 'superseded by a newer version'));
  if (verdict?.status === 'unhealthy') return { steps: superseded, gateFailure: verdict.reason };
  if (verdict?.status !== 'healthy') return { steps: superseded };
  return {
    steps: superseded,
    commit: {
      ...slot.base,
      action: 'commit',
      appRevision: slot.app.revision,
      specHash: target.hash,
      spec: target.spec,
      reason: verdict.reason,
    },
  };
}
