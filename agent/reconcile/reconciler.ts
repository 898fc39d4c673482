/**
 * The reconcile loop: observe → plan → stop if nothing to do → run one batch
 * → observe again.
 *
 * Invariants:
 * - One batch at a time: `trigger()` while a tick runs only marks the loop
 *   dirty, so at most one more tick follows.
 * - A newer desired revision aborts the running batch through its
 *   AbortSignal (a pull in progress is cancelled, not failed) and resets backoff.
 * - A failed step is never retried in place; it is planned again by a later
 *   tick once its backoff has passed.
 * - Nothing is removed until a desired state is known (received or restored).
 * - An app whose update waits for its window (window-hold.ts) is looked at
 *   again when the window opens: a timer at the earliest opening, set anew by
 *   every tick, so it follows new desired states and the device's clock.
 */
import type { Logger } from 'pino';
import type { AppState, DesiredApp, DesiredState } from '../../shared/index.js';
import { MAX_REPORTED_OUTPUT_LINE, MAX_REPORTED_OUTPUT_LINES } from '../../shared/index.js';
import { EngineOutages } from '../health/engine-outages.js';
import type { HealthVerdict } from '../health/verdict.js';
import { enginePulls, type ImageSource } from '../images/image-source.js';
import { reportedOutput } from '../jobs/output.js';
import { containerName } from '../runtime/labels.js';
import type { ContainerRuntime, InitContainer, ManagedContainer } from '../runtime/runtime.js';
import { StepBackoff } from './backoff.js';
import { type DependencyWait, unmetDependencies, WaitClock, waitKey } from './dependencies.js';
import { DiskPreflight } from './disk-preflight.js';
import { execute } from './executors.js';
import { overdueInits } from './init-plan.js';
import { findUpdateLocks, healthTimeoutMs, judgeCandidates, nothingObserved, type Observation, probeDependencies } from './observation.js';
import { appStates, unreachableStates } from './phases.js';
import { plan } from './plan.js';
import { Records } from './records.js';
import { pullStarted, type StepEvent, stepFailed, stepSucceeded } from './step-events.js';
import { describeStep, isComposite, type SingleStep, type Step, stepKey } from './steps.js';
import { closedWindows, nextOpening, waitsForWindow } from './window-hold.js';

const HEALTH_RECHECK_MS = 1000;
/**
 * The longest wait for an update window to open: a timer runs on the
 * monotonic clock, so a wall clock set meanwhile (by NTP after a boot) is
 * caught up with at the next look rather than missed by a day.
 */
const WINDOW_RECHECK_MAX_MS = 15 * 60_000;
const DEFAULT_DISK_RESERVE = 256 * 1024 * 1024;

export interface ObservedState {
  observedRevision: number;
  apps: AppState[];
  runtimeError?: string;
}

export interface ReconcilerOptions {
  runtime: ContainerRuntime;
  /** Where images come from (image-puller.ts); default the engine's pull. */
  images?: ImageSource;
  deviceId: string;
  namePrefix?: string;
  logger: Logger;
  onState: (state: ObservedState) => void;
  /** Called for every step the loop ran, succeeded or failed (published on `…/events`). */
  onEvent?: (event: StepEvent) => void;
  /** What the agent remembers about updates (committed versions, rolled-back revisions). */
  records?: Records;
  /** Free space to leave under Docker's data root after a pull (default 256 MiB). */
  diskReserveBytes?: number;
  /** The agent's image store, when it downloads images itself: its disk counts in the pre-flight check (disk-preflight.ts). */
  imageStoreDir?: string;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  stopTimeoutSeconds?: number;
  /** Images other parts of the agent still need (a job's): never removed, though the agent pulled them. */
  imagesInUse?: () => ReadonlySet<string>;
  /** The device's clock: health gates' deadlines and update windows are read on it. */
  now?: () => number;
}

export class Reconciler {
  private desired: DesiredState | undefined;
  private running = false;
  private dirty = false;
  private closed = false;
  private controller = new AbortController();
  private wakeTimer: NodeJS.Timeout | undefined;
  /** Set while an app's update waits for its window: a tick when the first of them opens. */
  private windowTimer: NodeJS.Timeout | undefined;
  /** The last observation: what the state report shows while the engine cannot be reached, or a pull runs. */
  private observation: Observation;
  private previousBatch = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  private readonly pulling = new Set<string>();
  private readonly failures = new Map<string, string>();
  private readonly backoff: StepBackoff;
  private readonly records: Records;
  private dataRoot: string | undefined;
  private readonly preflight: DiskPreflight;
  private readonly log: Logger;
  private readonly now: () => number;
  /** When the engine was first found unreachable, while it still is. */
  private unreachableSince: string | undefined;
  /** The runtime error the last report carried; undefined before the first report. */
  private lastReport: { runtimeError: string | undefined } | undefined;
  private readonly images: ImageSource;
  /** When the engine was away: a trial's clock stops meanwhile, and an exit then is the engine's doing. */
  private readonly outages = new EngineOutages();
  /** How long each container has waited for a dependency (dependencies.ts). */
  private readonly waitClock = new WaitClock();
  /** The last lines of init containers that exited, by id: read once, as an exited container writes no more. */
  private readonly initOutput = new Map<string, readonly string[]>();

  constructor(private readonly options: ReconcilerOptions) {
    this.records = options.records ?? new Records();
    this.preflight = new DiskPreflight(
      options.diskReserveBytes ?? DEFAULT_DISK_RESERVE,
      options.logger.child({ component: 'disk' }),
      options.imageStoreDir,
    );
    this.backoff = new StepBackoff({ baseMs: options.backoffBaseMs ?? 1000, maxMs: options.backoffMaxMs ?? 60_000 });
    this.log = options.logger.child({ component: 'reconciler' });
    this.now = options.now ?? Date.now;
    this.images = options.images ?? enginePulls(options.runtime);
    this.observation = nothingObserved(this.records.view, this.records.pulledImages);
  }

  get desiredRevision(): number {
    return this.desired?.revision ?? 0;
  }

  /** Accepts a newer desired state; returns false (and changes nothing) for a stale or replayed one. */
  setDesired(desired: DesiredState): boolean {
    if (this.desired && desired.revision <= this.desired.revision) return false;
    this.desired = desired;
    clearTimeout(this.windowTimer);
    this.backoff.reset();
    this.failures.clear();
    this.controller.abort(new Error(`superseded by desired revision ${desired.revision}`));
    this.trigger();
    return true;
  }

  /**
   * Reports the last observation again without looking at the engine: what
   * changed is the agent's own doing (an image download's progress). Nothing
   * before the first report.
   */
  republish(): void {
    if (this.lastReport && !this.closed) this.report(this.observation, this.lastReport.runtimeError);
  }

  trigger(): void {
    if (this.closed) return;
    this.dirty = true;
    if (!this.running) void this.loop();
  }

  /** Resolves once the loop has nothing left to do (for tests and orderly shutdown). */
  idle(): Promise<void> {
    if (!this.running && !this.dirty) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.wakeTimer);
    clearTimeout(this.windowTimer);
    this.controller.abort(new Error('agent stopping'));
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.dirty && !this.closed) {
        this.dirty = false;
        await this.tick();
      }
    } catch (err) {
      this.log.error({ err }, 'reconcile tick failed unexpectedly');
      this.wakeIn(this.options.backoffBaseMs ?? 1000);
    } finally {
      this.running = false;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async tick(): Promise<void> {
    const controller = new AbortController();
    this.controller = controller;
    const observation = await this.observe();
    if (!observation) return;
    if (this.desired) this.records.retain(new Set([...this.desired.apps.map((a) => a.name), ...observation.containers.map((c) => c.app)]));

    const now = this.now();
    const prefix = this.options.namePrefix ?? '';
    const steps = plan(observation.containers, this.desired?.apps, {
      ...observation,
      primaryName: (app, container) => `${prefix}${containerName(app, container)}`,
    });
    const runnable = steps.filter((step) => !this.backoff.isWaiting(stepKey(step), now));
    this.report(observation);
    this.wakeWhenWindowOpens(observation);
    if (runnable.length === 0) {
      this.previousBatch.clear();
      // A new version on trial is looked at again soon: its gate has a deadline.
      // So is an app holding its update lock: the lock file has no event to wait for.
      // And so is a container waiting for a dependency: a health check answers no event.
      const onTrial =
        [...observation.health.values()].some((v) => v.status === 'pending') ||
        observation.locks.size > 0 ||
        (observation.waits?.size ?? 0) > 0;
      const wait = [this.backoff.nextReadyIn(now), onTrial ? HEALTH_RECHECK_MS : undefined].filter((w) => w !== undefined);
      if (wait.length > 0) this.wakeIn(Math.min(...wait));
      return;
    }

    const batch = new Set<string>();
    for (const step of runnable) {
      if (controller.signal.aborted || this.closed) break;
      await this.run(step, controller.signal, batch);
    }
    this.previousBatch = batch;
    this.dirty = true;
  }

  /**
   * One look at the device, kept as `this.observation`. Undefined while the
   * engine cannot be reached: the last observation is reported with the
   * error, and the loop tries again after a backoff.
   */
  private async observe(): Promise<Observation | undefined> {
    const { runtime } = this.options;
    const desired = this.desired?.apps ?? [];
    const lookedAt = this.now();
    let containers: ManagedContainer[];
    let inits: InitContainer[] = [];
    const imagesPresent = new Set<string>();
    try {
      containers = await runtime.listManaged();
      if (runtime.listInitContainers) inits = await runtime.listInitContainers();
      const images = desired.flatMap((app) => [...app.containers, ...(app.initContainers ?? [])].map((c) => c.image));
      for (const image of new Set(images)) {
        if (await runtime.hasImage(image)) imagesPresent.add(image);
      }
      await this.readInitOutput(inits);
    } catch (err) {
      return this.unreachable(err as Error);
    }
    const health = await judgeCandidates(desired, this.records.view, containers, this.now(), this.outages.list);
    // A dockerd shutting down stops its containers (a candidate "exits")
    // while it still answers on connections already open, though it refuses
    // new ones. So a look is trusted only once the engine takes a new
    // connection when it would roll a version back (a failed gate), or when
    // it would end an outage (and act on what the engine stopped, such as
    // starting a stopped candidate again). Otherwise the look is one of an
    // engine going away, and an exit it shows falls in the outage.
    if (this.outages.away || [...health.values()].some((v) => v.status === 'unhealthy')) {
      try {
        await runtime.confirmReachable?.();
      } catch (err) {
        return this.unreachable(err as Error);
      }
    }
    this.outages.seenUp(lookedAt);
    this.backoff.succeeded('observe');
    this.unreachableSince = undefined;
    this.reportHealthFailures(containers, health);
    const locks = findUpdateLocks(containers);
    const missing = new Set(desired.flatMap((a) => a.containers.map((c) => c.image)).filter((image) => !imagesPresent.has(image)));
    this.dataRoot ??= await runtime.info().then(
      (info) => info.dataRoot,
      () => undefined,
    );
    const diskShort = await this.preflight.shortfalls(desired, missing, this.dataRoot).catch((err: Error) => {
      this.log.warn({ err: err.message }, 'disk check failed; pulling without it');
      return new Map<string, string>();
    });
    const { view: records } = this.records;
    const pulledImages = removable(this.records.pulledImages, this.options.imagesInUse?.());
    const windows = closedWindows(desired, this.now());
    const waits = await this.dependencyWaits(desired, containers);
    const initOutput = this.initOutput;
    const overdue = overdueInits(desired, inits, this.now(), healthTimeoutMs);
    this.observation = {
      containers,
      imagesPresent,
      records,
      health,
      pulledImages,
      locks,
      diskShort,
      windows,
      waits,
      inits,
      initOutput,
      overdueInits: overdue,
    };
    return this.observation;
  }

  /** Containers waiting for a dependency, timed by the wait clock. */
  private async dependencyWaits(
    desired: readonly DesiredApp[],
    containers: readonly ManagedContainer[],
  ): Promise<Map<string, DependencyWait>> {
    const healthOf = await probeDependencies(desired, this.records.view, containers);
    const found = new Map<string, DependencyWait & { revision: number }>();
    for (const app of desired) {
      for (const [name, wait] of unmetDependencies(app, containers, this.records.view, healthOf)) {
        found.set(waitKey(app.name, name), { ...wait, revision: app.revision });
      }
    }
    const byName = new Map(desired.map((app) => [app.name, app]));
    return this.waitClock.stamp(found, this.now(), (name) => healthTimeoutMs(byName.get(name)!));
  }

  /** Reads the last lines of init containers that exited and were not read yet; forgets those gone. */
  private async readInitOutput(inits: readonly InitContainer[]): Promise<void> {
    const { runtime } = this.options;
    const present = new Set(inits.map((c) => c.id));
    for (const id of [...this.initOutput.keys()]) if (!present.has(id)) this.initOutput.delete(id);
    for (const init of inits) {
      if ((init.state !== 'exited' && init.state !== 'dead') || this.initOutput.has(init.id) || !runtime.tailLogs) continue;
      const entries = await runtime.tailLogs(init.id, MAX_REPORTED_OUTPUT_LINES, MAX_REPORTED_OUTPUT_LINE).catch((err: Error) => {
        this.log.warn({ app: init.app, container: init.container, err: err.message }, 'cannot read the last lines of an init container');
        return [];
      });
      this.initOutput.set(init.id, reportedOutput([{ container: init.container, entries }]));
    }
  }

  /** The engine cannot be reached (or is going away): report it, keep the last observation, look again after a backoff. */
  private unreachable(err: Error): undefined {
    const message = `container runtime unavailable: ${err.message}`;
    this.outages.wentAway(this.now());
    this.unreachableSince ??= new Date(this.now()).toISOString();
    this.log.warn({ err: err.message }, 'cannot observe containers; will retry');
    this.report(this.observation, message);
    this.wakeIn(this.backoff.failed('observe', this.now()));
    return undefined;
  }

  private async run(step: Step, signal: AbortSignal, batch: Set<string>): Promise<void> {
    const key = stepKey(step);
    const log = this.log.child({ app: step.app, container: step.container, action: step.action });
    // A step that succeeded in the last batch and is asked for again had no
    // observable effect; treat that as a failure so the loop backs off instead of spinning.
    if (this.previousBatch.has(key)) {
      this.fail(step, key, new Error('the previous attempt had no observable effect'));
      return;
    }
    batch.add(key);
    log.info({ reason: step.reason }, describeStep(step));
    if (step.action === 'pull') {
      this.pulling.add(step.image);
      this.report(this.observation);
      this.options.onEvent?.(pullStarted(step));
    }
    const started = this.now();
    /** Set once a part of a composite step reported its own failure, so the step does not report it again. */
    let failedPart = false;
    try {
      await execute(step, {
        runtime: this.options.runtime,
        images: this.images,
        deviceId: this.options.deviceId,
        namePrefix: this.options.namePrefix ?? '',
        records: this.records,
        signal,
        stopTimeoutSeconds: this.options.stopTimeoutSeconds ?? 10,
        part: (part, act) =>
          this.runPart(part, act).catch((err: unknown) => {
            failedPart = true;
            throw err;
          }),
      });
      this.backoff.succeeded(key);
      this.failures.delete(step.app);
      const durationMs = this.now() - started;
      log.debug({ durationMs }, `${describeStep(step)} done`);
      if (isComposite(step)) return;
      const imageBytes = step.action === 'pull' ? await this.options.runtime.imageSize?.(step.image).catch(() => undefined) : undefined;
      this.options.onEvent?.(stepSucceeded(step, durationMs, imageBytes));
    } catch (err) {
      if (signal.aborted) {
        log.info({ why: String((signal.reason as Error)?.message ?? signal.reason) }, `${describeStep(step)} cancelled`);
        return;
      }
      this.fail(step, key, err as Error, { reported: failedPart });
    } finally {
      if (step.action === 'pull') this.pulling.delete(step.image);
    }
  }

  /** One part of a composite step: logged and reported as the step it stands for, its failure too. */
  private async runPart<T>(part: SingleStep, act: () => Promise<T>): Promise<T> {
    const log = this.log.child({ app: part.app, container: part.container, action: part.action });
    log.info({ reason: part.reason }, describeStep(part));
    const started = this.now();
    let result: T;
    try {
      result = await act();
    } catch (err) {
      this.options.onEvent?.(stepFailed(part, err as Error));
      throw err;
    }
    const durationMs = this.now() - started;
    log.debug({ durationMs }, `${describeStep(part)} done`);
    this.options.onEvent?.(stepSucceeded(part, durationMs));
    return result;
  }

  private fail(step: Step, key: string, err: Error, { reported = false } = {}): void {
    if (!reported) this.options.onEvent?.(stepFailed(step, err));
    const delay = this.backoff.failed(key, this.now());
    this.failures.set(step.app, `${describeStep(step)} failed: ${err.message}`);
    this.log.warn(
      { app: step.app, container: step.container, action: step.action, err: err.message, retryInMs: delay },
      `${describeStep(step)} failed`,
    );
  }

  private report(observation: Observation, runtimeError?: string): void {
    this.lastReport = { runtimeError };
    const apps = appStates(this.desired?.apps, observation.containers, {
      ...observation,
      pulling: this.pulling,
      failures: this.failures,
      ...(this.images.progress ? { progress: (image: string) => this.images.progress?.(image) } : {}),
    });
    const unreachable = runtimeError !== undefined && this.unreachableSince !== undefined;
    this.options.onState({
      observedRevision: this.desiredRevision,
      apps: unreachable ? unreachableStates(apps, this.unreachableSince!, runtimeError) : apps,
      ...(runtimeError ? { runtimeError } : {}),
    });
  }

  /** One `health-failed` event when a container's verdict turns unhealthy (the rollback that follows has its own). */
  private reportHealthFailures(current: readonly ManagedContainer[], verdicts: ReadonlyMap<string, HealthVerdict>): void {
    for (const container of current) {
      const verdict = verdicts.get(container.id);
      if (verdict?.status !== 'unhealthy' || this.observation.health.get(container.id)?.status === 'unhealthy') continue;
      this.options.onEvent?.({ type: 'health-failed', app: container.app, container: container.container, message: verdict.reason });
    }
  }

  /** A tick when the first window an app's update waits for opens; none while nothing waits. */
  private wakeWhenWindowOpens(observation: Observation): void {
    clearTimeout(this.windowTimer);
    const waiting = (this.desired?.apps ?? []).flatMap((app) => waitsForWindow(app, observation.containers, observation) ?? []);
    const opensAt = nextOpening(waiting);
    if (opensAt === undefined || this.closed) return;
    const ms = Math.min(Math.max(opensAt - this.now(), 0), WINDOW_RECHECK_MAX_MS);
    this.log.debug({ opensAt: new Date(opensAt).toISOString(), wakeInMs: ms }, 'an update waits for its window');
    this.windowTimer = setTimeout(() => this.trigger(), ms);
    this.windowTimer.unref();
  }

  private wakeIn(ms: number): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.trigger(), ms);
    this.wakeTimer.unref();
  }
}

/** The images the agent pulled, less those something else still needs. */
function removable(pulled: ReadonlySet<string>, inUse: ReadonlySet<string> | undefined): ReadonlySet<string> {
  if (!inUse || inUse.size === 0) return pulled;
  return new Set([...pulled].filter((image) => !inUse.has(image)));
}
