/**
 * The one place an app's `update.strategy` is looked at. A strategy plans a
 * slot while nothing runs its target spec yet: how the running version makes
 * way for the new one. The mapped type makes a strategy without a planner a
 * compile error.
 */
import type { Slot, SlotPlan, UpdateStrategy } from '../slot.js';
import { downloadThenKill } from './download-then-kill.js';
import { killThenDownload } from './kill-then-download.js';
import { startThenKill } from './start-then-kill.js';

export const strategies: { [S in UpdateStrategy]: (slot: Slot) => SlotPlan } = {
  'download-then-kill': downloadThenKill,
  'kill-then-download': killThenDownload,
  'start-then-kill': startThenKill,
};

/** A candidate runs its trial where it was created, beside the running version, and takes the primary name only once committed. */
export function trialsBeside(strategy: UpdateStrategy): boolean {
  return strategy === 'start-then-kill';
}
