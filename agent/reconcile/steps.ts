/**
 * What the agent can do to a device, as data. Steps are a union keyed on
 * `action`; executors.ts must supply one executor per action, or it does not compile.
 * Every step carries the reason it was planned, which is what operators see.
 */
import type { ContainerSpec, RegistryAuth } from '../../shared/index.js';
import type { RestartPolicy } from '../runtime/runtime.js';

interface StepBase {
  app: string;
  container: string;
  reason: string;
}

export type Step =
  | (StepBase & { action: 'pull'; image: string; auth?: RegistryAuth })
  | (StepBase & { action: 'create'; appRevision: number; specHash: string; spec: ContainerSpec; name?: string })
  | (StepBase & { action: 'start'; id: string })
  /** `drain`: leave user-defined networks first (their DNS stops naming it), wait, then stop. */
  | (StepBase & { action: 'stop'; id: string; drain?: boolean })
  | (StepBase & { action: 'remove'; id: string })
  /**
   * Stop the committed version and move it aside (renamed), kept until the new
   * version is committed; its restart policy becomes `no`, so the engine never starts it by itself.
   */
  | (StepBase & { action: 'stash'; id: string; name: string })
  /**
   * Give a version set aside its own name, its spec's restart policy back, and
   * start it: the rollback of one container, or a start-then-kill version taking over.
   */
  | (StepBase & { action: 'restore'; id: string; name: string; restartPolicy: RestartPolicy })
  /** Record that this container's spec passed its health gate. */
  | (StepBase & { action: 'commit'; appRevision: number; specHash: string; spec: ContainerSpec })
  /** Record that the app's revision failed its health gate: the previous version comes back. */
  | (StepBase & { action: 'rollback'; appRevision: number })
  /** Remove an image the agent pulled and no app needs any more (not the current nor the previous of any app). */
  | (StepBase & { action: 'remove-image'; image: string });

export type StepAction = Step['action'];

/** Identifies "the same step" across ticks, for backoff after failures. */
export function stepKey(step: Step): string {
  return step.action === 'remove-image' ? `${step.action}:${step.image}` : `${step.action}:${step.app}/${step.container}`;
}

export function describeStep(step: Step): string {
  const target = `${step.app}/${step.container}`;
  switch (step.action) {
    case 'pull':
      return `pull ${step.image} for ${target}`;
    case 'create':
      return `create ${target} (app revision ${step.appRevision})`;
    case 'commit':
      return `commit ${target} (app revision ${step.appRevision})`;
    case 'rollback':
      return `roll back ${step.app} from revision ${step.appRevision}`;
    case 'remove-image':
      return `remove image ${step.image}`;
    case 'stash':
    case 'restore':
      return `${step.action} ${target} (${step.id.slice(0, 12)} as ${step.name})`;
    default:
      return `${step.action} ${target} (${step.id.slice(0, 12)})`;
  }
}
