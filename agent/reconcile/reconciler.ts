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
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type AppState, type DesiredApp, type DesiredState, parseDuration } from '../../shared/index.js';
import { probe } from '../health/probe.js';
import { type HealthVerdict, healthVerdict } from '../health/verdict.js';
import { containerName } from '../runtime/labels.js';
import type { ContainerRuntime, ManagedContainer } from '../runtime/runtime.js';
import { specHash } from '../runtime/spec-hash.js';
import { StepBackoff } from './backoff.js';
import { DiskPreflight } from './disk-preflight.js';
import { execute } from './executors.js';
import { appStates } from './phases.js';
import { plan } from './plan.js';
import { Records } from './records.js';
import { pullStarted, type StepEvent, stepFailed, stepSucceeded } from './step-events.js';
import { describeStep, type Step, stepKey } from './steps.js';

const HEALTH_RECHECK_MS = 1000;
const DEFAULT_DISK_RESERVE = 256 * 1024 * 1024;
/** Like balena's updates.lock: an app creates it in one of its volumes to defer a swap during critical work. */
export const UPDATE_LOCK_FILE = 'updates.lock';

/** Apps whose running containers hold an update lock, with the lock's path on the host. */
function findUpdateLocks(current: readonly ManagedContainer[]): Map<string, string> {
  const locks = new Map<string, string>();
  for (const container of current) {
    if (container.state !== 'running' || locks.has(container.app)) continue;
    const lock = (container.mountSources ?? []).map((source) => join(source, UPDATE_LOCK_FILE)).find((path) => existsSync(path));
    if (lock) locks.set(container.app, lock);
  }
  return locks;
}
const PROBE_TIMEOUT_MS = 2000;
const DEFAULT_HEALTH_TIMEOUT = '60s';
const DEFAULT_MIN_READY_SECONDS = 10;

function gatePolicy(app: DesiredApp) {
  return {
    healthTimeoutMs: parseDuration(app.update?.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT),
    minReadyMs: (app.update?.minReadySeconds ?? DEFAULT_MIN_READY_SECONDS) * 1000,
  };
}

export interface ObservedState {
  observedRevision: number;
  apps: AppState[];
  runtimeError?: string;
}

export interface ReconcilerOptions {
  runtime: ContainerRuntime;
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
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  stopTimeoutSeconds?: number;
  now?: () => number;
}

export class Reconciler {
  private desired: DesiredState | undefined;
  private running = false;
  private dirty = false;
  private closed = false;
  private controller = new AbortController();
  private wakeTimer: NodeJS.Timeout | undefined;
  private lastObserved: ManagedContainer[] = [];
  private previousBatch = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  private readonly pulling = new Set<string>();
  private readonly failures = new Map<string, string>();
  private readonly backoff: StepBackoff;
  private readonly records: Records;
  private health = new Map<string, HealthVerdict>();
  private locks = new Map<string, string>();
  private diskShort = new Map<string, string>();
  private dataRoot: string | undefined;
  private readonly preflight: DiskPreflight;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: ReconcilerOptions) {
    this.records = options.records ?? new Records();
    this.preflight = new DiskPreflight(options.diskReserveBytes ?? DEFAULT_DISK_RESERVE, options.logger.child({ component: 'disk' }));
    this.backoff = new StepBackoff({ baseMs: options.backoffBaseMs ?? 1000, maxMs: options.backoffMaxMs ?? 60_000 });
    this.log = options.logger.child({ component: 'reconciler' });
    this.now = options.now ?? Date.now;
  }

  get desiredRevision(): number {
    return this.desired?.revision ?? 0;
  }

  /** Accepts a newer desired state; returns false (and changes nothing) for a stale or replayed one. */
  setDesired(desired: DesiredState): boolean {
    if (this.desired && desired.revision <= this.desired.revision) return false;
    this.desired = desired;
    this.backoff.reset();
    this.failures.clear();
    this.controller.abort(new Error(`superseded by desired revision ${desired.revision}`));
    this.trigger();
    return true;
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
    const { runtime } = this.options;
    let current: ManagedContainer[];
    const imagesPresent = new Set<string>();
    try {
      current = await runtime.listManaged();
      for (const image of new Set(this.desired?.apps.flatMap((app) => app.containers.map((c) => c.image)) ?? [])) {
        if (await runtime.hasImage(image)) imagesPresent.add(image);
      }
    } catch (err) {
      const message = `container runtime unavailable: ${(err as Error).message}`;
      this.log.warn({ err: (err as Error).message }, 'cannot observe containers; will retry');
      this.emit(this.lastObserved, message);
      this.wakeIn(this.backoff.failed('observe', this.now()));
      return;
    }
    this.backoff.succeeded('observe');
    this.lastObserved = current;
    const verdicts = await this.checkHealth(current);
    this.reportHealthFailures(current, verdicts);
    this.health = verdicts;
    this.locks = findUpdateLocks(current);
    const missing = new Set(
      this.desired?.apps.flatMap((a) => a.containers.map((c) => c.image)).filter((image) => !imagesPresent.has(image)),
    );
    this.dataRoot ??= await runtime.info().then(
      (info) => info.dataRoot,
      () => undefined,
    );
    this.diskShort = await this.preflight.shortfalls(this.desired?.apps ?? [], missing, this.dataRoot).catch((err: Error) => {
      this.log.warn({ err: err.message }, 'disk check failed; pulling without it');
      return new Map<string, string>();
    });
    if (this.desired) this.records.retain(new Set([...this.desired.apps.map((a) => a.name), ...current.map((c) => c.app)]));

    const now = this.now();
    const prefix = this.options.namePrefix ?? '';
    const steps = plan(current, this.desired?.apps, {
      imagesPresent,
      primaryName: (app, container) => `${prefix}${containerName(app, container)}`,
      records: this.records.view,
      health: this.health,
      pulledImages: this.records.pulledImages,
      locks: this.locks,
      diskShort: this.diskShort,
    });
    const runnable = steps.filter((step) => !this.backoff.isWaiting(stepKey(step), now));
    this.emit(current);
    if (runnable.length === 0) {
      this.previousBatch.clear();
      // A new version on trial is looked at again soon: its gate has a deadline.
      // So is an app holding its update lock: the lock file has no event to wait for.
      const onTrial = [...this.health.values()].some((v) => v.status === 'pending') || this.locks.size > 0;
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
      this.emit(this.lastObserved);
      this.options.onEvent?.(pullStarted(step));
    }
    const started = this.now();
    try {
      await execute(step, {
        runtime: this.options.runtime,
        deviceId: this.options.deviceId,
        namePrefix: this.options.namePrefix ?? '',
        records: this.records,
        signal,
        stopTimeoutSeconds: this.options.stopTimeoutSeconds ?? 10,
      });
      this.backoff.succeeded(key);
      this.failures.delete(step.app);
      const durationMs = this.now() - started;
      const imageBytes = step.action === 'pull' ? await this.options.runtime.imageSize?.(step.image).catch(() => undefined) : undefined;
      this.options.onEvent?.(stepSucceeded(step, durationMs, imageBytes));
    } catch (err) {
      if (signal.aborted) {
        log.info({ why: String((signal.reason as Error)?.message ?? signal.reason) }, `${describeStep(step)} cancelled`);
        return;
      }
      this.fail(step, key, err as Error);
    } finally {
      if (step.action === 'pull') this.pulling.delete(step.image);
    }
  }

  private fail(step: Step, key: string, err: Error): void {
    this.options.onEvent?.(stepFailed(step, err));
    const delay = this.backoff.failed(key, this.now());
    this.failures.set(step.app, `${describeStep(step)} failed: ${err.message}`);
    this.log.warn(
      { app: step.app, container: step.container, action: step.action, err: err.message, retryInMs: delay },
      `${describeStep(step)} failed`,
    );
  }

  private emit(current: readonly ManagedContainer[], runtimeError?: string): void {
    this.options.onState({
      observedRevision: this.desiredRevision,
      apps: appStates(this.desired?.apps, current, {
        pulling: this.pulling,
        failures: this.failures,
        records: this.records.view,
        health: this.health,
        locks: this.locks,
        diskShort: this.diskShort,
      }),
      ...(runtimeError ? { runtimeError } : {}),
    });
  }

  /**
   * Health gate verdicts for containers of the desired spec that is not
   * committed yet (a new version on trial). Older versions are not on trial:
   * once a new one is committed, the stashed or stopping old one is being
   * retired, and judging it would report its expected exit as a health failure.
   * Probes run here, in observation, so the planner stays pure.
   */
  private async checkHealth(current: readonly ManagedContainer[]): Promise<Map<string, HealthVerdict>> {
    const verdicts = new Map<string, HealthVerdict>();
    const now = this.now();
    for (const app of this.desired?.apps ?? []) {
      const committed = this.records.view.get(app.name)?.committed?.containers;
      for (const spec of app.containers) {
        const hash = specHash(spec);
        if (committed?.[spec.name]?.hash === hash) continue;
        for (const container of current.filter((c) => c.app === app.name && c.container === spec.name && c.specHash === hash)) {
          if (container.state === 'created') continue;
          const policy = gatePolicy(app);
          const probed = container.state === 'running' ? await probe(spec, container, PROBE_TIMEOUT_MS) : undefined;
          verdicts.set(container.id, healthVerdict(container, spec, policy, probed, now));
        }
      }
    }
    return verdicts;
  }

  /** One `health-failed` event when a container's verdict turns unhealthy (the rollback that follows has its own). */
  private reportHealthFailures(current: readonly ManagedContainer[], verdicts: Map<string, HealthVerdict>): void {
    for (const container of current) {
      const verdict = verdicts.get(container.id);
      if (verdict?.status !== 'unhealthy' || this.health.get(container.id)?.status === 'unhealthy') continue;
      this.options.onEvent?.({ type: 'health-failed', app: container.app, container: container.container, message: verdict.reason });
    }
  }

  private wakeIn(ms: number): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.trigger(), ms);
    this.wakeTimer.unref();
  }
}
