/**
 * What the agent can do to a device, as data. Steps are a union keyed on
 * `action`; executors.ts must supply one executor per action, or it does not compile.
 * Every step carries the reason it was planned, which is what operators see.
 */
import type { ContainerSpec, RegistryAuth } from '../../shared/index.js';

interface StepBase {
  app: string;
  container: string;
  reason: string;
}

export type Step =
  | (StepBase & { action: 'pull'; image: string; auth?: RegistryAuth })
  | (StepBase & { action: 'create'; appRevision: number; specHash: string; spec: ContainerSpec })
  | (StepBase & { action: 'start'; id: string })
  | (StepBase & { action: 'stop'; id: string })
  | (StepBase & { action: 'remove'; id: string });

export type StepAction = Step['action'];

/** Identifies "the same step" across ticks, for backoff after failures. */
export function stepKey(step: Step): string {
  return `${step.action}:${step.app}/${step.container}`;
}

export function describeStep(step: Step): string {
  const target = `${step.app}/${step.container}`;
  switch (step.action) {
    case 'pull':
      return `pull ${step.image} for ${target}`;
    case 'create':
      return `create ${target} (app revision ${step.appRevision})`;
    default:
      return `${step.action} ${target} (${step.id.slice(0, 12)})`;
  }
}
