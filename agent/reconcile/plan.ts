/**
 * The pure planner: given what runs (containers found by their Flotilla
 * labels) and what should run, return the next batch of steps. No I/O:
 * everything it needs comes in as arguments, so every case is a unit test.
 *
 * One call plans one tick. Dependent steps (stop before remove before create
 * before start) come out in successive ticks, each after a fresh observation,
 * so a crash or a failure between two steps never leaves a plan half-run:
 * the next tick simply asks again for what is still missing.
 *
 * Updates are download-then-kill: the new image is pulled while the old
 * container keeps running; only then is the old one stopped and replaced.
 */
import type { DesiredApp } from '../../shared/index.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import { specHash } from '../runtime/spec-hash.js';
import type { Step } from './steps.js';

export interface PlanContext {
  /** Images (as written in specs) that are present on the device. */
  imagesPresent: ReadonlySet<string>;
}

const ACTIVE_STATES = new Set(['running', 'restarting', 'paused']);

export function isActive(container: ManagedContainer): boolean {
  return ACTIVE_STATES.has(container.state);
}

/**
 * `desired` is undefined while the agent has never received (nor restored) a
 * desired state: then it changes nothing, rather than removing apps it knows nothing about.
 */
export function plan(current: readonly ManagedContainer[], desired: readonly DesiredApp[] | undefined, ctx: PlanContext): Step[] {
  if (desired === undefined) return [];
  const steps: Step[] = [];
  const wanted = new Set<string>();

  for (const app of desired) {
    for (const spec of app.containers) {
      wanted.add(key(app.name, spec.name));
      const hash = specHash(spec);
      const existing = current.filter((c) => c.app === app.name && c.container === spec.name);
      const upToDate = existing.filter((c) => c.specHash === hash);
      const stale = existing.filter((c) => c.specHash !== hash);
      const base = { app: app.name, container: spec.name };

      if (upToDate.length > 0) {
        const [keep, ...duplicates] = [...upToDate].sort((a, b) => Number(isActive(b)) - Number(isActive(a)));
        for (const extra of duplicates) steps.push(retire(extra, 'duplicate of a container with the same spec'));
        for (const old of stale) steps.push(retire(old, 'replaced by a container with the current spec'));
        if (keep!.state === 'created') steps.push({ ...base, action: 'start', id: keep!.id, reason: 'created but not started' });
        continue;
      }

      if (!ctx.imagesPresent.has(spec.image)) {
        steps.push({
          ...base,
          action: 'pull',
          image: spec.image,
          ...(spec.auth ? { auth: spec.auth } : {}),
          reason: stale.length > 0 ? `spec changed: pulling ${spec.image} before replacing the running container` : 'image not present',
        });
        continue;
      }
      if (stale.length > 0) {
        for (const old of stale) steps.push(retire(old, 'spec changed: replacing container'));
        continue;
      }
      steps.push({ ...base, action: 'create', appRevision: app.revision, specHash: hash, spec, reason: 'not running' });
    }
  }

  const desiredApps = new Set(desired.map((a) => a.name));
  for (const container of current) {
    if (wanted.has(key(container.app, container.container))) continue;
    steps.push(
      retire(container, desiredApps.has(container.app) ? 'container removed from the app spec' : 'app no longer desired on this device'),
    );
  }
  return steps;
}

/** Stop first if it runs, remove once stopped: two ticks, so a stop timeout never blocks removal planning. */
function retire(container: ManagedContainer, reason: string): Step {
  const base = { app: container.app, container: container.container, id: container.id, reason };
  return isActive(container) ? { ...base, action: 'stop' } : { ...base, action: 'remove' };
}

function key(app: string, container: string): string {
  return `${app}/${container}`;
}
