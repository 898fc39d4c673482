/**
 * The pure planner: given what runs (containers found by their Flotilla
 * labels), what should run, what the agent remembers about past updates and
 * how healthy new containers are, return the next batch of steps. No I/O:
 * everything comes in as arguments, so every case is a unit test.
 *
 * One call plans one tick. Dependent steps come out in successive ticks,
 * each after a fresh observation, so a crash between two steps never leaves
 * a plan half-run: the next tick asks again for what is still missing.
 *
 * An update of one container, download-then-kill (the default):
 *   pull new image (old keeps running) → stash old (stop, rename aside) →
 *   create new → start new → health gate → commit → remove old.
 * kill-then-download stashes the old one before pulling (for devices short
 * on disk). start-then-kill creates the new one beside the running old one
 * (under a `.next-` name), and only once it is committed stops and removes
 * the old one and renames the new one: no moment without a running version. If the gate fails, the app's revision is marked rolled back:
 * the new container is removed and the stashed one restored (renamed back,
 * started). A rolled-back revision is not retried until a newer one arrives.
 */
import type { ContainerSpec, DesiredApp } from '../../shared/index.js';
import type { HealthVerdict } from '../health/verdict.js';
import { restartPolicyOf } from '../runtime/create-options.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import { specHash } from '../runtime/spec-hash.js';
import type { UpdateRecords } from './records.js';
import type { Step } from './steps.js';

export interface PlanContext {
  /** Images (as written in specs) that are present on the device. */
  imagesPresent: ReadonlySet<string>;
  /** The Docker name a container of an app runs under (the agent's name prefix applied). */
  primaryName: (app: string, container: string) => string;
  records: UpdateRecords;
  /** Health gate verdicts of running containers whose spec is not committed yet, by container id. */
  health: ReadonlyMap<string, HealthVerdict>;
  /** Images the agent pulled itself: the only ones it ever removes. */
  pulledImages: ReadonlySet<string>;
  /** Apps holding an update lock (a file `updates.lock` in one of their volumes), with its path. */
  locks: ReadonlyMap<string, string>;
  /** Images that do not fit on disk now (size + reserve > free), with the reason. */
  diskShort: ReadonlyMap<string, string>;
}

const ACTIVE_STATES = new Set(['running', 'restarting', 'paused']);

export function isActive(container: ManagedContainer): boolean {
  return ACTIVE_STATES.has(container.state);
}

/** The name a new version goes by while it runs beside the old one (start-then-kill). */
export function nextName(primary: string, hash: string): string {
  return `${primary}.next-${hash.slice(0, 8)}`;
}

/** The name a stashed (kept for rollback) container goes by. */
export function stashName(primary: string, hash: string): string {
  return `${primary}.prev-${hash.slice(0, 8)}`;
}

/** What one container slot converges to: the desired spec, or after a rollback the committed one (or nothing). */
interface Target {
  hash: string;
  spec: ContainerSpec;
  /** Not yet through its health gate. */
  candidate: boolean;
}

/**
 * `desired` is undefined while the agent has never received (nor restored) a
 * desired state: then it changes nothing, rather than removing apps it knows nothing about.
 */
export function plan(current: readonly ManagedContainer[], desired: readonly DesiredApp[] | undefined, ctx: PlanContext): Step[] {
  if (desired === undefined) return [];
  const steps: Step[] = [];
  const wanted = new Set<string>();
  let roomNeeded = false;

  for (const app of desired) {
    const record = ctx.records.get(app.name);
    const rolledBack = record?.rolledBack?.revision === app.revision;
    const strategy = app.update?.strategy ?? 'download-then-kill';
    const gateFailures: string[] = [];
    // Containers of an app are committed together, once every candidate passed its gate,
    // so a rollback never leaves half an app on the new version.
    const commits: Step[] = [];
    let everyCandidateHealthy = true;

    for (const spec of app.containers) {
      wanted.add(key(app.name, spec.name));
      const committed = record?.committed?.containers[spec.name];
      const desiredHash = specHash(spec);
      const target: Target | undefined = rolledBack
        ? committed && { hash: committed.hash, spec: committed.spec, candidate: false }
        : { hash: desiredHash, spec, candidate: committed?.hash !== desiredHash };
      const slot = current.filter((c) => c.app === app.name && c.container === spec.name);
      const base = { app: app.name, container: spec.name };
      const primary = ctx.primaryName(app.name, spec.name);
      if (target?.candidate) {
        const onTrial = slot.find((c) => c.specHash === target.hash);
        if (ctx.health.get(onTrial?.id ?? '')?.status !== 'healthy') everyCandidateHealthy = false;
      }

      if (!target) {
        // Rolled back with no earlier version to return to: stop the failed one, keep it for `docker logs`.
        for (const c of slot.filter(isActive))
          steps.push({ ...base, action: 'stop', id: c.id, reason: 'rolled back: no previous version to run' });
        continue;
      }

      const matching = slot.filter((c) => c.specHash === target.hash).sort((a, b) => rank(b, primary) - rank(a, primary));
      const [mine, ...duplicates] = matching;
      const others = slot.filter((c) => c.specHash !== target.hash);
      for (const extra of duplicates) steps.push(retire(extra, 'duplicate of a container with the same spec'));

      // start-then-kill: the new version runs beside the old one, under another name, while on trial.
      const besideOld = target.candidate && strategy === 'start-then-kill';
      if (mine && mine.dockerName !== primary && !besideOld) {
        // The version to run sits aside (stashed, or new beside the old one): free its name, then bring it back.
        const holder = others.find((c) => c.dockerName === primary);
        const promoted = mine.dockerName.startsWith(`${primary}.next-`);
        const why = rolledBack
          ? { old: `rolled back: ${record?.rolledBack?.reason}`, mine: 'rolling back to the previous version' }
          : promoted
            ? { old: 'start-then-kill: the new version is healthy', mine: 'start-then-kill: the new version takes the name' }
            : { old: 'replaced by the kept version', mine: 'restoring the kept version' };
        if (holder) {
          const step = retire(holder, why.old);
          // Hand over without a failed request: the old one leaves the network (and its alias) before it stops.
          steps.push(promoted && step.action === 'stop' ? { ...step, drain: true } : step);
        } else
          steps.push({
            ...base,
            action: 'restore',
            id: mine.id,
            name: primary,
            restartPolicy: restartPolicyOf(target.spec),
            reason: why.mine,
          });
        continue;
      }

      if (mine) {
        if (mine.state === 'created') {
          steps.push({ ...base, action: 'start', id: mine.id, reason: 'created but not started' });
          continue;
        }
        if (target.candidate) {
          const verdict = ctx.health.get(mine.id);
          if (verdict?.status === 'healthy') {
            commits.push({
              ...base,
              action: 'commit',
              appRevision: app.revision,
              specHash: target.hash,
              spec: target.spec,
              reason: verdict.reason,
            });
          } else if (verdict?.status === 'unhealthy') {
            gateFailures.push(verdict.reason);
          }
          // Pending: the stashed previous version stays until the gate decides.
          for (const c of others) if (!isKept(c, committed?.hash)) steps.push(retire(c, 'superseded by a newer version'));
          continue;
        }
        for (const c of others) steps.push(retire(c, 'previous version no longer needed'));
        continue;
      }

      // Nothing runs the target spec yet.
      const holder = others.find((c) => c.dockerName === primary);
      const stashHolder = (reason: string): Step | undefined =>
        holder && { ...base, action: 'stash', id: holder.id, name: stashName(primary, holder.specHash), reason };
      const keepHolder = holder !== undefined && target.candidate && isKept(holder, committed?.hash);

      // The app asked not to be interrupted: the running version stays until the lock goes (or the operator forces).
      const lockedOut = holder !== undefined && isActive(holder) && target.candidate && ctx.locks.has(app.name) && !app.forceUpdate;

      if (!ctx.imagesPresent.has(target.spec.image)) {
        if (ctx.diskShort.has(target.spec.image)) {
          // Make room with images no app needs; if there are none, the running version stays untouched.
          roomNeeded = true;
          continue;
        }
        if (keepHolder && strategy === 'kill-then-download') {
          if (lockedOut) continue;
          steps.push(stashHolder('kill-then-download: stopping the running version before pulling')!);
          continue;
        }
        steps.push({
          ...base,
          action: 'pull',
          image: target.spec.image,
          ...(target.spec.auth ? { auth: target.spec.auth } : {}),
          reason: holder ? `spec changed: pulling ${target.spec.image} before replacing the running container` : 'image not present',
        });
        continue;
      }
      if (holder && besideOld && isActive(holder)) {
        steps.push({
          ...base,
          action: 'create',
          name: nextName(primary, target.hash),
          appRevision: app.revision,
          specHash: target.hash,
          spec: target.spec,
          reason: 'start-then-kill: starting the new version beside the running one',
        });
        continue;
      }
      if (holder) {
        if (lockedOut) continue;
        steps.push(
          keepHolder
            ? stashHolder('spec changed: keeping the running version aside until the new one is healthy')!
            : retire(holder, 'spec changed: replacing container'),
        );
        continue;
      }
      for (const c of others) if (!(target.candidate && isKept(c, committed?.hash))) steps.push(retire(c, 'not the version to run'));
      steps.push({
        ...base,
        action: 'create',
        appRevision: target.candidate ? app.revision : (record?.committed?.revision ?? app.revision),
        specHash: target.hash,
        spec: target.spec,
        reason: rolledBack ? 'rolling back: recreating the previous version' : 'not running',
      });
    }

    if (gateFailures.length > 0) {
      steps.push({ app: app.name, container: '*', action: 'rollback', appRevision: app.revision, reason: gateFailures.join('; ') });
    } else if (everyCandidateHealthy) {
      steps.push(...commits);
    }
  }

  const desiredApps = new Set(desired.map((a) => a.name));
  for (const container of current) {
    if (wanted.has(key(container.app, container.container))) continue;
    steps.push(
      retire(container, desiredApps.has(container.app) ? 'container removed from the app spec' : 'app no longer desired on this device'),
    );
  }
  return steps.length === 0 || roomNeeded ? [...steps, ...collectImages(current, desired, ctx)] : steps;
}

/**
 * Image garbage collection, once everything else has converged or when a
 * pull needs the room: remove
 * images the agent pulled that no container uses and that are neither the
 * desired, the committed nor the previous image of any app.
 */
function collectImages(current: readonly ManagedContainer[], desired: readonly DesiredApp[], ctx: PlanContext): Step[] {
  const keep = new Set(current.map((c) => c.image));
  for (const app of desired) {
    for (const spec of app.containers) keep.add(spec.image);
    const record = ctx.records.get(app.name);
    for (const committed of Object.values(record?.committed?.containers ?? {})) keep.add(committed.spec.image);
    for (const image of record?.previousImages ?? []) keep.add(image);
  }
  return [...ctx.pulledImages]
    .filter((image) => !keep.has(image))
    .map((image) => ({
      action: 'remove-image',
      app: '*',
      container: '*',
      image,
      reason: 'no app needs it (each keeps its current and previous image)',
    }));
}

/** A stopped container of the committed spec is kept (for rollback) while a candidate is on trial. */
function isKept(container: ManagedContainer, committedHash: string | undefined): boolean {
  return committedHash !== undefined && container.specHash === committedHash;
}

/** Prefer the container under the primary name, then a running one. */
function rank(container: ManagedContainer, primary: string): number {
  return (container.dockerName === primary ? 2 : 0) + (isActive(container) ? 1 : 0);
}

/** Stop first if it runs, remove once stopped: two ticks, so a stop timeout never blocks removal planning. */
function retire(container: ManagedContainer, reason: string): Step {
  const base = { app: container.app, container: container.container, id: container.id, reason };
  return isActive(container) ? { ...base, action: 'stop' } : { ...base, action: 'remove' };
}

function key(app: string, container: string): string {
  return `${app}/${container}`;
}
