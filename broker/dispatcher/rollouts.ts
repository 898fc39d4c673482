/**
 * Rollouts as the hub runs them: the pure state machine (rollout-plan.ts) fed
 * from the stores, its result saved. The API starts one when an apply makes a
 * new revision of an app with `spec.rollout`, and pauses, resumes or aborts it;
 * the dispatcher advances the active ones when device state arrives and on a
 * timer (for device timeouts), and asks which revision each device must run.
 *
 * Rule for an apply during a rollout: the new rollout starts from the revision
 * each device is told to run at that moment (updated devices from the
 * interrupted rollout's revision, the others from theirs), so no device jumps
 * back before its turn.
 */
import type { Logger } from 'pino';
import type { RolloutStatus } from '../../shared/index.js';
import type { AppStore, StoredApp } from '../store/apps.js';
import type { DeviceStore } from '../store/devices.js';
import type { RolloutStore } from '../store/rollouts.js';
import { ApiError } from './errors.js';
import {
  type AppReport,
  abortRollout,
  advanceRollout,
  assignedRevision,
  type Candidate,
  pauseRollout,
  type Rollout,
  RolloutTransitionError,
  resumeRollout,
  rolloutStatus,
  startRollout,
} from './rollout-plan.js';
import { matches, type SchedulableApp } from './scheduling.js';

export interface RolloutDeps {
  apps: AppStore;
  devices: DeviceStore;
  rollouts: RolloutStore;
  logger: Logger;
  now?: () => Date;
}

export class Rollouts {
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(private readonly deps: RolloutDeps) {
    this.log = deps.logger.child({ component: 'rollouts' });
    this.now = deps.now ?? (() => new Date());
  }

  /**
   * After `revision` became the app's current one: start a rollout if the
   * spec asks for one and there is a revision to roll from; otherwise every
   * device takes the new revision at once and any older rollout is dropped.
   */
  onNewRevision(name: string): void {
    const app = this.deps.apps.get(name);
    if (!app) return;
    const existing = this.deps.rollouts.get(name);
    const policy = app.spec.spec.rollout;
    const previous = this.deps.apps.previousRevision(name, app.revision);
    if (!policy || previous === undefined) {
      if (existing) this.deps.rollouts.delete(name);
      return;
    }
    const from = (id: string) => (existing ? assignedRevision(existing, id, previous) : previous);
    const devices = this.matched(app).map((id) => ({ id, from: from(id) }));
    const rollout = startRollout(
      { app: name, revision: app.revision, previousRevision: previous, policy, devices },
      (id) => this.report(id, name),
      this.now(),
    );
    this.deps.rollouts.save(rollout);
    this.log.info({ app: name, revision: app.revision, previousRevision: previous, devices: devices.length }, 'rollout started');
  }

  forget(name: string): void {
    this.deps.rollouts.delete(name);
  }

  /** Advances every active rollout; true when any changed (desired documents may need republishing). */
  advanceAll(): boolean {
    let changed = false;
    for (const rollout of this.deps.rollouts.active()) changed = this.advance(rollout) || changed;
    return changed;
  }

  status(name: string): RolloutStatus {
    return rolloutStatus(this.require(name));
  }

  pause(name: string): RolloutStatus {
    return this.transition(name, pauseRollout);
  }

  resume(name: string): RolloutStatus {
    return this.transition(name, resumeRollout);
  }

  abort(name: string): RolloutStatus {
    return this.transition(name, abortRollout);
  }

  /** The newest rollout of each app that has one, for one pass over the fleet. */
  snapshot(apps: readonly StoredApp[]): Map<string, Rollout> {
    const map = new Map<string, Rollout>();
    for (const app of apps) {
      const rollout = this.deps.rollouts.get(app.name);
      if (rollout && rollout.revision === app.revision) map.set(app.name, rollout);
    }
    return map;
  }

  /** The app as `deviceId` must run it: the current revision, or the older one its rollout assigns (looked up in history). */
  versionFor(app: SchedulableApp, deviceId: string, rollouts: ReadonlyMap<string, Rollout>): SchedulableApp {
    const rollout = rollouts.get(app.name);
    if (!rollout) return app;
    const revision = assignedRevision(rollout, deviceId, rollout.previousRevision);
    if (revision === app.revision) return app;
    const stored = this.deps.apps.revision(app.name, revision);
    if (!stored) return app;
    // Scheduling stays the current revision's: which devices run the app is not rolled out.
    return { name: app.name, revision, spec: { ...app.spec, spec: stored.spec.spec } };
  }

  private transition(name: string, step: (rollout: Rollout, now: Date) => Rollout): RolloutStatus {
    let rollout: Rollout;
    try {
      rollout = step(this.require(name), this.now());
    } catch (err) {
      if (err instanceof RolloutTransitionError) throw new ApiError('invalid_request', `app "${name}": ${err.message}`);
      throw err;
    }
    this.deps.rollouts.save(rollout);
    this.log.info({ app: name, revision: rollout.revision, phase: rollout.phase }, 'rollout changed by the operator');
    this.advance(rollout);
    return this.status(name);
  }

  private require(name: string): Rollout {
    if (!this.deps.apps.get(name)) throw ApiError.notFound('app', name);
    const rollout = this.deps.rollouts.get(name);
    if (!rollout) throw new ApiError('not_found', `app "${name}" has no rollout (its spec has no rollout block, or it has one revision)`);
    return rollout;
  }

  private advance(rollout: Rollout): boolean {
    const app = this.deps.apps.get(rollout.app);
    if (!app || app.revision !== rollout.revision) return false;
    const member = new Map(rollout.devices.map((d) => [d.id, d.from]));
    const candidates: Candidate[] = this.matched(app).map((id) => ({ id, from: member.get(id) ?? rollout.previousRevision }));
    const next = advanceRollout(rollout, candidates, (id) => this.report(id, app.name), this.now());
    if (next === rollout) return false;
    this.deps.rollouts.save(next);
    if (next.phase !== rollout.phase) {
      this.log.info({ app: app.name, revision: next.revision, phase: next.phase, reason: next.reason }, `rollout ${next.phase}`);
    }
    return true;
  }

  private matched(app: StoredApp): string[] {
    return this.deps.devices
      .list()
      .filter((d) => d.state !== null && matches(app.spec.scheduling, d.id, d.labels))
      .map((d) => d.id);
  }

  private report(deviceId: string, app: string): AppReport | undefined {
    const reported = this.deps.devices.get(deviceId)?.state?.apps.find((a) => a.name === app);
    return reported ? { revision: reported.revision, phase: reported.phase } : undefined;
  }
}
