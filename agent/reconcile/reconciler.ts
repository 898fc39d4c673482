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
import type { Logger } from 'pino';
import type { AppState, DesiredState } from '../../shared/index.js';
import type { ContainerRuntime, ManagedContainer } from '../runtime/runtime.js';
import { StepBackoff } from './backoff.js';
import { execute } from './executors.js';
import { appStates } from './phases.js';
import { plan } from './plan.js';
import { describeStep, type Step, stepKey } from './steps.js';

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
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: ReconcilerOptions) {
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

    const now = this.now();
    const steps = plan(current, this.desired?.apps, { imagesPresent });
    const runnable = steps.filter((step) => !this.backoff.isWaiting(stepKey(step), now));
    this.emit(current);
    if (runnable.length === 0) {
      this.previousBatch.clear();
      const wait = this.backoff.nextReadyIn(now);
      if (wait !== undefined) this.wakeIn(wait);
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
    }
    try {
      await execute(step, {
        runtime: this.options.runtime,
        deviceId: this.options.deviceId,
        namePrefix: this.options.namePrefix ?? '',
        signal,
        stopTimeoutSeconds: this.options.stopTimeoutSeconds ?? 10,
      });
      this.backoff.succeeded(key);
      this.failures.delete(step.app);
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
      apps: appStates(this.desired?.apps, current, { pulling: this.pulling, failures: this.failures }),
      ...(runtimeError ? { runtimeError } : {}),
    });
  }

  private wakeIn(ms: number): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.trigger(), ms);
    this.wakeTimer.unref();
  }
}
