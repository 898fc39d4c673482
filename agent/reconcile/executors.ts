/**
 * One executor per step action. The mapped type makes a new action without
 * an executor a compile error. Executors of single steps are idempotent:
 * running a step twice (after a crash, or because the previous tick's effect
 * was not yet observed) is harmless. A composite step (run, swap) is planned
 * only where none of it has happened yet: what it leaves half done, the
 * planner finishes with single steps (plan-slot.ts).
 */
import type { ImageSource } from '../images/image-source.js';
import { isConflict } from '../runtime/errors.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import type { RecordWriter } from './records.js';
import type { SingleStep, Step, StepAction } from './steps.js';

export interface ExecutionContext {
  runtime: ContainerRuntime;
  /** Where images come from (image-puller.ts): the agent's own download, or the engine's pull. */
  images: ImageSource;
  records: RecordWriter;
  deviceId: string;
  /** See CreateRequest.namePrefix. */
  namePrefix: string;
  signal: AbortSignal;
  /** Seconds a container gets between SIGTERM and SIGKILL. */
  stopTimeoutSeconds: number;
  /**
   * Runs one part of a composite step (run, swap): the reconciler logs and
   * reports it as the step it stands for, so operators see the same events
   * as when each part was a step of its own.
   */
  part<T>(part: SingleStep, act: () => Promise<T>): Promise<T>;
}

/** How long a drained container keeps running after leaving its networks. */
const DRAIN_MS = 1000;

export type Executors = { [A in StepAction]: (step: Extract<Step, { action: A }>, ctx: ExecutionContext) => Promise<void> };

export const executors: Executors = {
  pull: async (step, ctx) => {
    const { image, auth, app, appRevision, via, ahead } = step;
    await ctx.images.pull({
      image,
      ...(auth ? { auth } : {}),
      owner: { app, ...(appRevision !== undefined ? { revision: appRevision } : {}), ...(ahead ? { prefetch: true } : {}) },
      ...(via ? { via } : {}),
      signal: ctx.signal,
    });
    ctx.records.notePulled(image);
  },
  create: async (step, ctx) => {
    await createContainer(step, ctx);
  },
  start: (step, ctx) => ctx.runtime.start(step.id),
  'run-init': async (step, ctx) => {
    const { runtime } = ctx;
    if (!runtime.createInitContainer) throw new Error('this container runtime cannot run init containers');
    const id = await runtime.createInitContainer({
      deviceId: ctx.deviceId,
      namePrefix: ctx.namePrefix,
      app: step.app,
      appRevision: step.appRevision,
      specHash: step.specHash,
      spec: step.spec,
    });
    await runtime.start(id);
  },
  run: async (step, ctx) => {
    const create = createPart(step, step.name);
    const id = await ctx.part(create, () => createContainer(create, ctx));
    // Killed here, the agent leaves a created container, which the next plan starts.
    await ctx.part({ ...partBase(step), action: 'start', id }, () => ctx.runtime.start(id));
  },
  swap: async (step, ctx) => {
    // Created while the old version still serves: on a device, creating (the
    // container's layer, secret files) is slower than the stop and the start.
    // Host ports are only bound at start, so the new one may publish the same ones.
    const create = createPart(step, step.incomingName);
    const id = await ctx.part(create, () => createContainer(create, ctx));
    // Killed from here until the rename below, the agent leaves a container
    // under the incoming name that never ran: the next plan removes it and swaps again.
    const stash: SingleStep = { ...partBase(step), action: 'stash', id: step.id, name: step.stashName };
    await ctx.part(stash, () => executors.stash(stash, ctx));
    // Named before it starts: a start that fails leaves the new version under
    // the primary name, where its health gate judges it and rolls it back.
    await ctx.part({ ...partBase(step), action: 'start', id }, async () => {
      await ctx.runtime.rename(id, step.name);
      await ctx.runtime.start(id);
    });
  },
  stop: async (step, ctx) => {
    if (step.drain) {
      await ctx.runtime.leaveNetworks(step.id);
      // Clients that resolved the old address a moment ago finish their requests.
      await new Promise((resolve) => setTimeout(resolve, DRAIN_MS));
    }
    await ctx.runtime.stop(step.id, ctx.stopTimeoutSeconds);
  },
  remove: (step, ctx) => ctx.runtime.remove(step.id),
  stash: async (step, ctx) => {
    await ctx.runtime.stop(step.id, ctx.stopTimeoutSeconds);
    await ctx.runtime.rename(step.id, step.name);
    // Docker starts an `always` container at its own start even after a stop:
    // after a reboot mid-update the stash would run beside the new version (and
    // take its host port). Last, so that an agent killed in between never leaves
    // a container under its own name with a policy its spec does not have.
    await ctx.runtime.setRestartPolicy(step.id, { name: 'no' });
  },
  restore: async (step, ctx) => {
    await ctx.runtime.setRestartPolicy(step.id, step.restartPolicy);
    // Start before taking the name: until the rename, the planner sees a version
    // set aside and plans this step again. Renamed first, a start that failed
    // (an engine going down) left a stopped container under its own name, which
    // the planner leaves to its restart policy, and a stopped stash has none
    // that brings it back: the app stayed down while reported "runs again".
    await ctx.runtime.start(step.id);
    await ctx.runtime.rename(step.id, step.name);
  },
  commit: async (step, ctx) => {
    ctx.records.commit(step.app, step.appRevision, step.container, { hash: step.specHash, spec: step.spec });
  },
  rollback: async (step, ctx) => {
    ctx.records.markRolledBack(step.app, step.appRevision, step.reason);
  },
  'remove-image': async (step, ctx) => {
    try {
      await ctx.runtime.removeImage(step.image);
    } catch (err) {
      // Used by a container Flotilla does not manage: that is the user's image now.
      if (!isConflict(err)) throw err;
    }
    ctx.records.forgetImage(step.image);
  },
};

export function execute(step: Step, ctx: ExecutionContext): Promise<void> {
  return (executors[step.action] as (s: Step, c: ExecutionContext) => Promise<void>)(step, ctx);
}

type CreateStep = Extract<Step, { action: 'create' }>;

function createContainer(step: CreateStep, ctx: ExecutionContext): Promise<string> {
  return ctx.runtime.create({
    deviceId: ctx.deviceId,
    namePrefix: ctx.namePrefix,
    ...(step.name ? { name: step.name } : {}),
    app: step.app,
    appRevision: step.appRevision,
    specHash: step.specHash,
    spec: step.spec,
  });
}

function partBase(step: Step): { app: string; container: string; reason: string } {
  return { app: step.app, container: step.container, reason: step.reason };
}

function createPart(step: Extract<Step, { action: 'run' | 'swap' }>, name: string | undefined): CreateStep {
  const { appRevision, specHash, spec } = step;
  return { ...partBase(step), action: 'create', appRevision, specHash, spec, ...(name ? { name } : {}) };
}
