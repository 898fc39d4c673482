/**
 * What the agent can do to a device, as data. Steps are a union keyed on
 * `action`; executors.ts must supply one executor per action, or it does not compile.
 * Every step carries the reason it was planned, which is what operators see.
 */
import type { ContainerSpec, ImageDownloadVia, RegistryAuth } from '../../shared/index.js';
import type { RestartPolicy } from '../runtime/runtime.js';

interface StepBase {
  app: string;
  container: string;
  reason: string;
}

export type Step =
  /**
   * `appRevision`: the revision that wants the image; `via: 'engine'`: the app asks for the
   * engine's pull (`spec.update.pull`); `ahead`: for an update held for its window (window-hold.ts).
   */
  | (StepBase & { action: 'pull'; image: string; auth?: RegistryAuth; appRevision?: number; via?: ImageDownloadVia; ahead?: boolean })
  /** Planned as the first part of `run` and `swap`, the composite steps that start what they create. */
  | (StepBase & { action: 'create'; appRevision: number; specHash: string; spec: ContainerSpec; name?: string })
  | (StepBase & { action: 'start'; id: string })
  /**
   * Create and start an init container of the app's revision (init-plan.ts), labelled apart from
   * its containers; `index` of `of` in the spec's `initContainers`. Killed between the two, the
   * agent leaves a created init container, which the next plan starts.
   */
  | (StepBase & { action: 'run-init'; appRevision: number; specHash: string; spec: ContainerSpec; index: number; of: number })
  /** Create and start at once, as `docker run` does: no observation between the two. */
  | (StepBase & { action: 'run'; appRevision: number; specHash: string; spec: ContainerSpec; name?: string })
  /**
   * Replace the committed version under the primary name with the target, in
   * one act: the new container is created beside it under `incomingName`, the
   * old one is stashed as `stashName`, and the new one takes `name` and starts,
   * so the app is down only from the old one's stop to the new one's start.
   */
  | (StepBase & {
      action: 'swap';
      id: string;
      stashName: string;
      incomingName: string;
      name: string;
      appRevision: number;
      specHash: string;
      spec: ContainerSpec;
    })
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

/** Steps made of several others, run without observing between them; each part is reported as the step it stands for. */
export type CompositeStep = Extract<Step, { action: 'run' | 'swap' }>;
export type SingleStep = Exclude<Step, CompositeStep>;

export function isComposite(step: Step): step is CompositeStep {
  return step.action === 'run' || step.action === 'swap';
}

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
    case 'run':
      return `${step.action} ${target} (app revision ${step.appRevision})`;
    case 'run-init':
      return `run init container ${target} (${step.index + 1} of ${step.of}, app revision ${step.appRevision})`;
    case 'swap':
      return `swap ${target} (${step.id.slice(0, 12)} aside as ${step.stashName}, app revision ${step.appRevision} in)`;
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
