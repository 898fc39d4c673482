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
 */
import type { DesiredApp } from '../../shared/index.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import { collectImages } from './image-gc.js';
import type { PlanContext } from './observation.js';
import { planSlot } from './plan-slot.js';
import { commitOrRollBack, stopWithoutPrevious, targetOf } from './rollback.js';
import { retire, slotOf } from './slot.js';
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
  const steps = [...apps.flatMap((a) => a.steps), ...retireUnwanted(current, desired, held)];
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
  const slots = app.containers.map((spec) => {
    const target = targetOf(app, spec, record);
    if (!target) return stopWithoutPrevious(current.filter((c) => c.app === app.name && c.container === spec.name));
    return planSlot(slotOf(app, spec, target, current, ctx, waitsForWindow));
  });
  return {
    steps: [...slots.flatMap((s) => s.steps), ...commitOrRollBack(app, slots)],
    needsRoom: slots.some((s) => s.needsRoom),
  };
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
