/**
 * A slot is one container of one desired app: the version it converges to
 * (its target) and the containers found for it, sorted by what the planner
 * does with them. Everything a strategy decides on is here, computed once,
 * so the strategies read as their sequence of moves and nothing else.
 */
import type { ContainerSpec, DesiredApp, UpdatePolicy } from '../../shared/index.js';
import type { HealthVerdict } from '../health/verdict.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import type { PlanContext } from './observation.js';
import type { Step } from './steps.js';

export type UpdateStrategy = NonNullable<UpdatePolicy['strategy']>;

export const DEFAULT_STRATEGY: UpdateStrategy = 'download-then-kill';

/** What one container slot converges to: the desired spec, or after a rollback the committed one. */
export interface Target {
  hash: string;
  spec: ContainerSpec;
  /** Not yet through its health gate. */
  candidate: boolean;
}

export interface Slot {
  app: DesiredApp;
  /** The app and container every step of this slot names. */
  base: { app: string; container: string };
  /** The Docker name the running version goes by. */
  primary: string;
  strategy: UpdateStrategy;
  target: Target;
  /** This container's spec hash in the last revision that passed its gate, and that revision. */
  committed: { hash: string | undefined; revision: number | undefined };
  /** Set while the app's desired revision is the one rolled back, with why it was. */
  rolledBackReason: string | undefined;
  /** The container of the target spec to keep: under the primary name if one is, running if one is. */
  mine: ManagedContainer | undefined;
  /** Further containers of the target spec. */
  duplicates: ManagedContainer[];
  /** Containers of any other spec (the running old version, a stash, a failed candidate). */
  others: ManagedContainer[];
  /** The container of another spec that holds the primary name. */
  holder: ManagedContainer | undefined;
  /** The health gate verdict of `mine`, while it is on trial. */
  verdict: HealthVerdict | undefined;
  /** A candidate of this slot has not passed its gate (yet): the app's commits wait for it. */
  gateOpen: boolean;
  imagePresent: boolean;
  /** The target's image does not fit on disk now. */
  imageDoesNotFit: boolean;
  /** The app holds its update lock and the operator did not force the revision. */
  locked: boolean;
  /** The target is new and the app's update waits for its window (window-hold.ts): nothing of it is created yet. */
  waitsForWindow: boolean;
}

/** What a slot does next, and what it tells the app's gate and the image collector. */
export interface SlotPlan {
  steps: Step[];
  /** The commit of a candidate that passed its gate; an app's commits go together. */
  commit?: Extract<Step, { action: 'commit' }>;
  /** Why the candidate failed its gate. */
  gateFailure?: string;
  /** As Slot.gateOpen: set by planSlot, so the app's gate reads it beside the commit. */
  gateOpen?: boolean;
  /** The target's image does not fit on disk: unused images go first, to make room. */
  needsRoom?: boolean;
}

/** `appWaitsForWindow`: the app's update waits for its window, decided for the app as a whole (window-hold.ts). */
export function slotOf(
  app: DesiredApp,
  spec: ContainerSpec,
  target: Target,
  current: readonly ManagedContainer[],
  ctx: PlanContext,
  appWaitsForWindow = false,
): Slot {
  const record = ctx.records.get(app.name);
  const containers = current.filter((c) => c.app === app.name && c.container === spec.name);
  const primary = ctx.primaryName(app.name, spec.name);
  const matching = containers.filter((c) => c.specHash === target.hash).sort((a, b) => rank(b, primary) - rank(a, primary));
  const [mine, ...duplicates] = matching;
  const others = containers.filter((c) => c.specHash !== target.hash);
  // The gate looks at the first container of the target spec found, ranked or not.
  const onTrial = containers.find((c) => c.specHash === target.hash);
  return {
    app,
    base: { app: app.name, container: spec.name },
    primary,
    strategy: app.update?.strategy ?? DEFAULT_STRATEGY,
    target,
    committed: { hash: record?.committed?.containers[spec.name]?.hash, revision: record?.committed?.revision },
    rolledBackReason: record?.rolledBack?.revision === app.revision ? record.rolledBack.reason : undefined,
    mine,
    duplicates,
    others,
    holder: others.find((c) => c.dockerName === primary),
    verdict: mine && ctx.health.get(mine.id),
    gateOpen: target.candidate && ctx.health.get(onTrial?.id ?? '')?.status !== 'healthy',
    imagePresent: ctx.imagesPresent.has(target.spec.image),
    imageDoesNotFit: ctx.diskShort.has(target.spec.image),
    locked: ctx.locks.has(app.name) && !app.forceUpdate,
    waitsForWindow: target.candidate && appWaitsForWindow,
  };
}

export function steps(...planned: Step[]): SlotPlan {
  return { steps: planned };
}

const ACTIVE_STATES = new Set(['running', 'restarting', 'paused']);

export function isActive(container: ManagedContainer): boolean {
  return ACTIVE_STATES.has(container.state);
}

/** The name a new version goes by while it runs beside the old one (start-then-kill). */
export function nextName(primary: string, hash: string): string {
  return `${primary}.next-${hash.slice(0, 8)}`;
}

/** The name a new version is created under beside the old one, until a swap gives it the primary name (moves.ts). */
export function incomingName(primary: string, hash: string): string {
  return `${primary}.new-${hash.slice(0, 8)}`;
}

/** The name a stashed (kept for rollback) container goes by. */
export function stashName(primary: string, hash: string): string {
  return `${primary}.prev-${hash.slice(0, 8)}`;
}

/** A stopped container of the committed spec is kept (for rollback) while a candidate is on trial. */
export function isKept(container: ManagedContainer, committedHash: string | undefined): boolean {
  return committedHash !== undefined && container.specHash === committedHash;
}

/** The running version is the committed one and a candidate replaces it: it is kept aside for a rollback. */
export function keepsHolder(slot: Slot): boolean {
  return slot.holder !== undefined && slot.target.candidate && isKept(slot.holder, slot.committed.hash);
}

/** The app asked not to be interrupted: the running version stays until the lock goes (or the operator forces). */
export function isLockedOut(slot: Slot): boolean {
  return slot.holder !== undefined && isActive(slot.holder) && slot.target.candidate && slot.locked;
}

/** Stop the version under the primary name and move it aside, kept until the candidate is committed. */
export function stashHolder(slot: Slot, holder: ManagedContainer, reason: string): Step {
  return { ...slot.base, action: 'stash', id: holder.id, name: stashName(slot.primary, holder.specHash), reason };
}

/** Stash the version under the primary name and start the target in its place, in one step (executors.ts). */
export function swapHolder(slot: Slot, holder: ManagedContainer, reason: string): Step {
  const { app, target, primary } = slot;
  return {
    ...slot.base,
    action: 'swap',
    id: holder.id,
    stashName: stashName(primary, holder.specHash),
    incomingName: incomingName(primary, target.hash),
    name: primary,
    appRevision: app.revision,
    specHash: target.hash,
    spec: target.spec,
    reason,
  };
}

/** Stop first if it runs, remove once stopped: two ticks, so a stop timeout never blocks removal planning. */
export function retire(container: ManagedContainer, reason: string): Step {
  const base = { app: container.app, container: container.container, id: container.id, reason };
  return isActive(container) ? { ...base, action: 'stop' } : { ...base, action: 'remove' };
}

/** Prefer the container under the primary name, then a running one. */
function rank(container: ManagedContainer, primary: string): number {
  return (container.dockerName === primary ? 2 : 0) + (isActive(container) ? 1 : 0);
}
