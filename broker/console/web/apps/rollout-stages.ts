/**
 * A rollout's two stages as the Rollout tab draws them: the canary (the
 * first `canary` devices) and the rest, each counting its healthy devices
 * of all of them. Pure, so the counting is unit-tested without a browser.
 */
import type { RolloutDeviceView, RolloutPhase } from '../../../../shared/api/results.js';

export interface StageProgress {
  healthy: number;
  total: number;
  /** Devices in the stage that failed or were sent back: shown beside the bar. */
  failed: number;
}

export function rolloutStages(devices: readonly RolloutDeviceView[]): { canary: StageProgress; rest: StageProgress } {
  const count = (inStage: RolloutDeviceView[]): StageProgress => ({
    healthy: inStage.filter((d) => d.state === 'healthy').length,
    total: inStage.length,
    failed: inStage.filter((d) => d.state === 'failed' || d.state === 'reverted').length,
  });
  return { canary: count(devices.filter((d) => d.canary)), rest: count(devices.filter((d) => !d.canary)) };
}

export type RolloutAction = 'pause' | 'resume' | 'abort' | 'rollback';

/**
 * The controls that apply in a phase: pause only while progressing, resume
 * only while paused, abort until it finished; a roll back (to the revision
 * before) whenever there is one to go back to.
 */
export function rolloutActions(phase: RolloutPhase, previousRevision: number): RolloutAction[] {
  const actions: RolloutAction[] = [];
  if (phase === 'progressing') actions.push('pause');
  if (phase === 'paused') actions.push('resume');
  if (phase === 'progressing' || phase === 'paused') actions.push('abort');
  if (previousRevision >= 1) actions.push('rollback');
  return actions;
}
