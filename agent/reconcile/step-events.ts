/**
 * What operators see on `…/events` for each step the agent ran: a type per
 * outcome (pulled, started, rolled-back, …) and a message that carries the
 * step's reason. Pure: the reconciler publishes what this returns.
 */
import { formatBytes } from '../../shared/index.js';
import type { SingleStep, Step } from './steps.js';
import { describeStep } from './steps.js';

export interface StepEvent {
  type: string;
  app?: string;
  container?: string;
  message: string;
}

/** A composite step (run, swap) has no event of its own: each of its parts reports as the step it stands for. */
const DONE: Record<SingleStep['action'], string> = {
  pull: 'pulled',
  create: 'created',
  start: 'started',
  'run-init': 'init-started',
  stop: 'stopped',
  remove: 'removed',
  stash: 'stashed',
  restore: 'restored',
  commit: 'health-passed',
  rollback: 'rolled-back',
  'remove-image': 'image-removed',
};

function target(step: Step): Pick<StepEvent, 'app' | 'container'> {
  if (step.app === '*') return {};
  return step.container === '*' ? { app: step.app } : { app: step.app, container: step.container };
}

/** Before a pull: on a slow link the pull is the long wait, and the operator should see it begin. */
export function pullStarted(step: Extract<Step, { action: 'pull' }>): StepEvent {
  return { type: 'pull-started', ...target(step), message: `pulling ${step.image}: ${step.reason}` };
}

/** `imageBytes`: the pulled image's size, when the runtime could tell. */
export function stepSucceeded(step: SingleStep, durationMs: number, imageBytes?: number): StepEvent {
  const size = imageBytes !== undefined ? `, ${formatBytes(imageBytes)}` : '';
  const took = step.action === 'pull' ? ` in ${durationMs} ms${size}` : '';
  return { type: DONE[step.action], ...target(step), message: `${describeStep(step)}${took}: ${step.reason}` };
}

export function stepFailed(step: Step, err: Error): StepEvent {
  return { type: `${step.action}-failed`, ...target(step), message: `${describeStep(step)} failed: ${err.message}` };
}
