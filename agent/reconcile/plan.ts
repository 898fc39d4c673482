/**
 * The pure planner: given what runs (containers found by their Flotilla
 * labels), what should run, what the agent remembers about past updates and
 * how healthy new containers are, return the next batch of steps. No I/O:
 * everything comes in as arguments, so every case is a unit test.
 *
 * One call plans one tick. Dependent steps come out in successive ticks,
 * each after a fresh observation, so a crash between two steps never leaves
 * a plan half-run: the next tick asks again for what is still missing. Where
 * an observation between two moves would only add to the time an app is
 * down, they are one composite step (create and start as `run`, stash and
 * start as `swap`), whose every half-done state the planner also finishes.
 *
 * Each container of each desired app is a slot (slot.ts) planned on its own
 * (plan-slot.ts); how a running version makes way for a new one is the app's
 * update strategy (strategies/); an app's containers are committed, or rolled
 * back, together (rollback.ts); containers no app wants are retired; unused
 * images go last (image-gc.ts). An app whose update waits for its window
 * (window-hold.ts) is held as a whole: its new containers wait, and so do the
 * ones its new revision drops.
 *
 * Start order: an app's slots are planned in `startOrder` (dependsOn), and a slot
 * whose container waits for a dependency (dependencies.ts), or whose app's init
 * containers have not all completed (init-plan.ts), plans no step that brings a
 * version up: its pulls go on, its start waits. A wait that times out, or an init
 * container that fails, fails the app's gate as a failed health check does.
 */
import { startOrder } from '../../shared/app-dependencies.js';
import type { DesiredApp } from '../../shared/index.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import { waitFailure, waitKey } from './dependencies.js';
import { collectImages } from './image-gc.js';
import { initDue, planInit, retireOrphanInits, STARTING_ACTIONS } from './init-plan.js';
import type { PlanContext } from './observation.js';
import { planSlot } from './plan-slot.js';
import { commitOrRollBack, stopWithoutPrevious, targetOf } from './rollback.js';
import { retire, type SlotPlan, slotOf } from './slot.js';
import type { Step } from './steps.js';
import { waitsForWindow } from './window-hold.js';

export type { PlanContext } from './observation.js';

/**
 * `desired` is undefined while the agent has never received (nor restored) a
 * desired state: then it changes nothing, rather than removing apps it knows nothing about.
 */
export function plan(current: readonly ManagedContainer[], desired: readonly DesiredApp[] | undefined, ctx: PlanContext): Step[] {
  if (desired === undefined) return [];
  const held = new Set(desired.filter((app) => waitsForWindow(app, current, ctx)).map((app) => app.name));
  const apps = desired.map((app) => planApp(app, current, ctx, held.has(app.name)));
  const steps = [
    ...apps.flatMap((a) => a.steps),
    ...retireUnwanted(current, desired, held),
    ...retireOrphanInits(ctx.inits ?? [], desired),
  ];
  // A pull that does not fit gets the room of images no app needs; otherwise they wait until everything else converged.
  const needsRoom = apps.some((a) => a.needsRoom);
  return steps.length === 0 || needsRoom ? [...steps, ...collectImages(current, desired, ctx)] : steps;
}

function planApp(
  app: DesiredApp,
  current: readonly ManagedContainer[],
  ctx: PlanContext,
  waitsForWindow: boolean,
): { steps: Step[]; needsRoom: boolean } {
  const record = ctx.records.get(app.name);
  const targets = startOrder(app.containers).map((spec) => ({ spec, target: targetOf(app, spec, record) }));
  const present = targets.flatMap(({ target }) => target ?? []);
  const locked = ctx.locks.has(app.name) && !app.forceUpdate;
  const due = initDue(app, current, present, waitsForWindow || locked);
  const inits = (ctx.inits ?? []).filter((c) => c.app === app.name);
  const init = planInit(
    app,
    inits,
    ctx,
    due,
    present.some((t) => t.candidate),
  );
  const slots = targets.map(({ spec, target }) => {
    if (!target) return stopWithoutPrevious(current.filter((c) => c.app === app.name && c.container === spec.name));
    const planned = planSlot(slotOf(app, spec, target, current, ctx, waitsForWindow));
    const wait = ctx.waits?.get(waitKey(app.name, spec.name));
    if (!wait && !init.blocking) return planned;
    const failure = wait && target.candidate ? waitFailure(spec.name, wait) : undefined;
    return held(planned, failure);
  });
  const gates: SlotPlan[] = init.gateFailure ? [{ steps: [], gateFailure: init.gateFailure }, ...slots] : slots;
  return {
    steps: [...init.steps, ...slots.flatMap((s) => s.steps), ...commitOrRollBack(app, gates)],
    needsRoom: slots.some((s) => s.needsRoom),
  };
}

/** A slot that may not bring a version up yet: its other steps (pulls, stops) go on; `failure` fails the app's gate. */
function held(planned: SlotPlan, failure: string | undefined): SlotPlan {
  const steps = planned.steps.filter((step) => !STARTING_ACTIONS.has(step.action));
  return { ...planned, steps, ...(failure ? { gateFailure: failure } : {}) };
}

/** `held`: apps waiting for their update window, whose dropped containers stay until it opens. */
function retireUnwanted(current: readonly ManagedContainer[], desired: readonly DesiredApp[], held: ReadonlySet<string>): Step[] {
  const wanted = new Set(desired.flatMap((app) => app.containers.map((spec) => key(app.name, spec.name))));
  const desiredApps = new Set(desired.map((a) => a.name));
  return current
    .filter((c) => !wanted.has(key(c.app, c.container)) && !held.has(c.app))
    .map((c) => retire(c, desiredApps.has(c.app) ? 'container removed from the app spec' : 'app no longer desired on this device'));
}

function key(app: string, container: string): string {
  return `${app}/${container}`;
}
