/**
 * Init containers (`spec.initContainers`): run one after the other, each to its exit, before
 * the app's containers start. Pure, as the rest of the planner.
 *
 * When they run ("due"):
 * - `initPolicy: revision` (default): for a new revision the device swaps in, that is while a
 *   container's target is a candidate and no container of a candidate spec exists yet. Once
 *   the first candidate is created the revision is under way: init does not run again for it,
 *   even if a candidate is later removed by hand, unless all of them go.
 * - `initPolicy: start`: also whenever the app has no container at all on the engine (running,
 *   stopped or set aside): a reboot that removed them, or every one removed by hand. One
 *   container missing among others is recreated alone, without init.
 * - Never for a revision rolled back (its init containers are the failed ones), nor while the
 *   app's update waits for its window or its update lock.
 *
 * While due, the app's containers are held: nothing of the new version is created or started
 * (the old version keeps running, except under kill-then-download, which stops it before its
 * pull). An init container that exits non-zero, or that the engine cannot start, fails the
 * revision's health gate with its exit code and last lines; one still running after the
 * update's health timeout (counted from its own start) fails it the same way, so a hung
 * migration cannot hold an update forever. Once none is due, the finished ones are removed
 * (a hung one is stopped first); the last one's removal carries its last lines.
 */
import type { DesiredApp } from '../../shared/index.js';
import type { InitContainer, ManagedContainer } from '../runtime/runtime.js';
import { specHash } from '../runtime/spec-hash.js';
import type { PlanContext } from './observation.js';
import { isActive, retire, type Target } from './slot.js';
import type { Step, StepAction } from './steps.js';

export interface InitPlan {
  steps: Step[];
  /** Init containers have not all completed: the app's containers are not created nor started. */
  blocking: boolean;
  /** An init container failed: the revision fails its gate. */
  gateFailure?: string;
}

/** What a held app may not do while its init containers run, or a container waits for a dependency: bring up a version. */
export const STARTING_ACTIONS: ReadonlySet<StepAction> = new Set(['run', 'swap', 'create', 'start', 'restore']);

/** Whether the app's init containers are to run before its containers start now (see the header). */
export function initDue(app: DesiredApp, current: readonly ManagedContainer[], targets: readonly Target[], held: boolean): boolean {
  if (!app.initContainers?.length || held || targets.length < app.containers.length) return false;
  const mine = current.filter((c) => c.app === app.name);
  const candidates = new Set(targets.filter((t) => t.candidate).map((t) => t.hash));
  if (candidates.size > 0 && !mine.some((c) => candidates.has(c.specHash))) return true;
  return app.initPolicy === 'start' && mine.length === 0;
}

/** The steps of `app`'s init containers (`inits`: every init container found of this app). */
/**
 * `candidate`: a new revision is being swapped in, so a failed init container fails its gate;
 * otherwise (a start from nothing of the committed revision) the failed one is removed and runs again.
 */
export function planInit(app: DesiredApp, inits: readonly InitContainer[], ctx: PlanContext, due: boolean, candidate: boolean): InitPlan {
  if (!due) return { steps: retireFinished(inits, ctx), blocking: false };
  const specs = app.initContainers ?? [];
  // Any of another revision or spec is a leftover: it goes, beside the run of this one.
  const ours = (name: string, hash: string) =>
    inits.filter((c) => c.container === name && c.specHash === hash && c.appRevision === app.revision);
  const wanted = new Set(specs.flatMap((spec) => ours(spec.name, specHash(spec)).map((c) => c.id)));
  const leftovers = inits.filter((c) => !wanted.has(c.id)).map((c) => retire(asContainer(c), 'init container of another revision'));
  const base = { app: app.name };
  const failed = (run: InitContainer, why: string): InitPlan =>
    candidate
      ? { steps: leftovers, blocking: true, gateFailure: why }
      : { steps: [...leftovers, retire(asContainer(run), `${why}: it runs again`)], blocking: true };
  for (const [index, spec] of specs.entries()) {
    const hash = specHash(spec);
    const found = ours(spec.name, hash);
    const run = found.find((c) => c.state !== 'exited' && c.state !== 'dead') ?? found.at(-1);
    if (!run) {
      if (!ctx.imagesPresent.has(spec.image)) {
        const { image, auth } = spec;
        const pull: Step = {
          ...base,
          container: spec.name,
          action: 'pull',
          image,
          ...(auth ? { auth } : {}),
          appRevision: app.revision,
          ...(app.update?.pull === 'engine' ? { via: 'engine' as const } : {}),
          reason: 'image of an init container not present',
        };
        return { steps: [...leftovers, pull], blocking: true };
      }
      const step: Step = {
        ...base,
        container: spec.name,
        action: 'run-init',
        appRevision: app.revision,
        specHash: hash,
        spec,
        index,
        of: specs.length,
        reason: index === 0 ? `init containers run before the app's containers start` : `${specs[index - 1]!.name} completed`,
      };
      return { steps: [...leftovers, step], blocking: true };
    }
    if (run.state === 'created') {
      if (run.startError !== undefined) {
        return failed(run, `init container ${spec.name} could not start: ${run.startError}`);
      }
      return {
        steps: [...leftovers, { ...base, container: spec.name, action: 'start', id: run.id, reason: 'created but not started' }],
        blocking: true,
      };
    }
    if (run.state !== 'exited' && run.state !== 'dead') {
      const limit = ctx.overdueInits?.get(run.id);
      if (limit === undefined) return { steps: leftovers, blocking: true };
      return failed(run, `init container ${spec.name} did not finish within ${Math.round(limit / 1000)}s`);
    }
    if (run.exitCode !== 0) {
      const output = outputOf(run, ctx);
      return failed(
        run,
        `init container ${spec.name} exited with code ${run.exitCode ?? '?'}${output ? `; its last lines: ${output}` : ''}`,
      );
    }
  }
  return { steps: leftovers, blocking: false };
}

/**
 * Init containers running longer than their app's update health timeout (`timeoutMs`), with
 * that timeout, by container id: the planner fails them as it fails a non-zero exit.
 */
export function overdueInits(
  desired: readonly DesiredApp[],
  inits: readonly InitContainer[],
  now: number,
  timeoutMs: (app: DesiredApp) => number,
): Map<string, number> {
  const overdue = new Map<string, number>();
  for (const app of desired) {
    const limit = timeoutMs(app);
    for (const init of inits) {
      if (init.app !== app.name || init.state !== 'running' || init.startedAt === undefined) continue;
      if (now - Date.parse(init.startedAt) >= limit) overdue.set(init.id, limit);
    }
  }
  return overdue;
}

/** The init container of `app` running now and its place, for the phase message; undefined when none runs. */
export function runningInit(app: DesiredApp, inits: readonly InitContainer[]): string | undefined {
  const specs = app.initContainers ?? [];
  const index = specs.findIndex((spec) =>
    inits.some((c) => c.container === spec.name && c.appRevision === app.revision && (c.state === 'running' || c.state === 'created')),
  );
  return index < 0 ? undefined : `running init container ${specs[index]!.name} (${index + 1} of ${specs.length})`;
}

/** Init containers of apps no longer desired go with the apps. */
export function retireOrphanInits(inits: readonly InitContainer[], desired: readonly DesiredApp[]): Step[] {
  const apps = new Set(desired.map((a) => a.name));
  return inits.filter((c) => !apps.has(c.app)).map((c) => retire(asContainer(c), 'app no longer desired on this device'));
}

/** None is due: every init container of the app goes; the last one to have run says what it printed last. */
function retireFinished(inits: readonly InitContainer[], ctx: PlanContext): Step[] {
  const last = inits
    .filter((c) => c.state === 'exited' && c.exitCode === 0)
    .sort((a, b) => (a.finishedAt ?? '').localeCompare(b.finishedAt ?? ''))
    .at(-1);
  return inits.map((c) => {
    if (isActive(asContainer(c))) return retire(asContainer(c), `init container of revision ${c.appRevision} no longer needed`);
    const exit = c.exitCode !== undefined ? ` (exit code ${c.exitCode})` : '';
    const output = c === last ? outputOf(c, ctx) : undefined;
    return retire(asContainer(c), `init container finished${exit}${output ? `; its last lines: ${output}` : ''}`);
  });
}

function outputOf(container: InitContainer, ctx: PlanContext): string | undefined {
  const lines = ctx.initOutput?.get(container.id);
  return lines?.length ? lines.join(' | ') : undefined;
}

/** What retire() reads of a container, for one that is not an app's. */
function asContainer(c: InitContainer): ManagedContainer {
  return { ...c, status: c.state, restartCount: 0 };
}
