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
import type { DeviceState, RolloutStatus } from '../../shared/index.js';
import { agentRolloutKey } from '../store/agent-targets.js';
import type { AppStore, StoredApp, StoredRevision } from '../store/apps.js';
import type { DeviceStore, PlannedDevice } from '../store/devices.js';
import type { RolloutStore } from '../store/rollouts.js';
import { ApiError } from './errors.js';
import { revisionImages, withRolloutImages } from './rollout-images.js';
import {
  type AppReport,
  abortRollout,
  advanceRollout,
  assignedRevision,
  type Candidate,
  pauseRollout,
  type Rollout,
  resumeRollout,
  rolloutStatus,
  startRollout,
} from './rollout-plan.js';
import { saveTransition } from './rollout-transition.js';
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
  async onNewRevision(name: string): Promise<void> {
    const app = await this.deps.apps.get(name);
    if (!app) return;
    const existing = await this.deps.rollouts.get(name);
    const policy = app.spec.spec.rollout;
    const previous = await this.deps.apps.previousRevision(name, app.revision);
    if (!policy || previous === undefined) {
      if (existing) await this.deps.rollouts.delete(name);
      return;
    }
    const from = (id: string) => (existing ? assignedRevision(existing, id, previous) : previous);
    const fleet = await this.fleet(app);
    const devices = fleet.matched.map((id) => ({ id, from: from(id) }));
    const rollout = startRollout(
      { app: name, revision: app.revision, previousRevision: previous, policy, devices },
      fleet.report,
      this.now(),
    );
    await this.deps.rollouts.save(rollout);
    this.log.info({ app: name, revision: app.revision, previousRevision: previous, devices: devices.length }, 'rollout started');
  }

  /** The rollouts store itself, which agent rollouts share under their own keys (agent-rollouts.ts). */
  get store(): RolloutStore {
    return this.deps.rollouts;
  }

  async forget(name: string): Promise<void> {
    await this.deps.rollouts.delete(name);
  }

  /**
   * Advances every active app rollout (agent rollouts are agent-rollouts.ts'); true when any changed
   * (desired documents may need republishing). `stored`: the store's active() as just read, when the caller has it.
   */
  async advanceAll(stored?: readonly Rollout[]): Promise<boolean> {
    const active = (stored ?? (await this.deps.rollouts.active())).filter((rollout) => !rollout.app.startsWith(agentRolloutKey('')));
    if (active.length === 0) return false;
    const devices = await this.deps.devices.listForPlanning();
    let changed = false;
    for (const rollout of active) changed = (await this.advance(rollout, devices)) || changed;
    return changed;
  }

  /** The rollout with its devices' hold of the revision's images (rollout-images.ts), from their last state reports. */
  async status(name: string): Promise<RolloutStatus> {
    const rollout = await this.require(name);
    const status = rolloutStatus(rollout);
    const stored = await this.deps.apps.revision(rollout.app, rollout.revision);
    if (!stored) return status;
    const members = new Set(rollout.devices.map((d) => d.id));
    // The fleet's rows as stored text, no desired document opened; only the members' reports are parsed.
    const states = new Map<string, DeviceState>();
    for (const row of await this.deps.devices.fleetRows()) {
      if (row.state !== null && members.has(row.id)) states.set(row.id, JSON.parse(row.state) as DeviceState);
    }
    return withRolloutImages(status, revisionImages(stored.spec.spec.containers), (id) => states.get(id));
  }

  pause(name: string): Promise<RolloutStatus> {
    return this.transition(name, pauseRollout);
  }

  resume(name: string): Promise<RolloutStatus> {
    return this.transition(name, resumeRollout);
  }

  abort(name: string): Promise<RolloutStatus> {
    return this.transition(name, abortRollout);
  }

  /**
   * The newest rollout of each app that has one, with every older revision
   * its devices are assigned, for one pass over the fleet: `versionFor` then
   * looks nothing up.
   */
  async snapshot(apps: readonly StoredApp[]): Promise<RolloutSnapshot> {
    const map = new Map<string, { rollout: Rollout; revisions: ReadonlyMap<number, StoredRevision> }>();
    for (const app of apps) {
      const rollout = await this.deps.rollouts.get(app.name);
      if (!rollout || rollout.revision !== app.revision) continue;
      const assigned = new Set([rollout.previousRevision, ...rollout.devices.map((d) => d.from)]);
      assigned.delete(app.revision);
      const revisions = new Map<number, StoredRevision>();
      for (const revision of assigned) {
        const stored = await this.deps.apps.revision(app.name, revision);
        if (stored) revisions.set(revision, stored);
      }
      map.set(app.name, { rollout, revisions });
    }
    return map;
  }

  /** The app as `deviceId` must run it: the current revision, or the older one its rollout assigns (from the snapshot's history). */
  versionFor(app: SchedulableApp, deviceId: string, rollouts: RolloutSnapshot): SchedulableApp {
    const entry = rollouts.get(app.name);
    if (!entry) return app;
    const { rollout } = entry;
    const revision = assignedRevision(rollout, deviceId, rollout.previousRevision);
    if (revision === app.revision) return app;
    const stored = entry.revisions.get(revision);
    if (!stored) return app;
    // Scheduling stays the current revision's: which devices run the app is not rolled out.
    return { name: app.name, revision, spec: { ...app.spec, spec: stored.spec.spec } };
  }

  private async transition(name: string, step: (rollout: Rollout, now: Date) => Rollout): Promise<RolloutStatus> {
    const rollout = await saveTransition(`app "${name}"`, () => this.require(name), step, this.deps.rollouts, this.now);
    this.log.info({ app: name, revision: rollout.revision, phase: rollout.phase }, 'rollout changed by the operator');
    await this.advance(rollout, await this.deps.devices.listForPlanning());
    return this.status(name);
  }

  private async require(name: string): Promise<Rollout> {
    if (!(await this.deps.apps.get(name))) throw ApiError.notFound('app', name);
    const rollout = await this.deps.rollouts.get(name);
    if (!rollout) throw new ApiError('not_found', `app "${name}" has no rollout (its spec has no rollout block, or it has one revision)`);
    return rollout;
  }

  private async advance(rollout: Rollout, devices: readonly PlannedDevice[]): Promise<boolean> {
    const app = await this.deps.apps.get(rollout.app);
    if (!app || app.revision !== rollout.revision) return false;
    const member = new Map(rollout.devices.map((d) => [d.id, d.from]));
    const fleet = fleetOf(app, devices);
    const candidates: Candidate[] = fleet.matched.map((id) => ({ id, from: member.get(id) ?? rollout.previousRevision }));
    const next = advanceRollout(rollout, candidates, fleet.report, this.now());
    if (next === rollout) return false;
    // Changed meanwhile (an operator's pause, a new revision): the next tick reads it again.
    if (!(await this.deps.rollouts.save(next, rollout))) return false;
    if (next.phase !== rollout.phase) {
      this.log.info({ app: app.name, revision: next.revision, phase: next.phase, reason: next.reason }, `rollout ${next.phase}`);
    }
    return true;
  }

  private async fleet(app: StoredApp): Promise<AppFleet> {
    return fleetOf(app, await this.deps.devices.listForPlanning());
  }
}

/** Each app's rollout as one fleet pass reads it, with the older revisions it assigns. */
export type RolloutSnapshot = ReadonlyMap<string, { rollout: Rollout; revisions: ReadonlyMap<number, StoredRevision> }>;

/** The devices an app's scheduling selects (those that have reported state), and what any device reports of the app. */
interface AppFleet {
  matched: string[];
  report: (deviceId: string) => AppReport | undefined;
}

function fleetOf(app: StoredApp, devices: readonly PlannedDevice[]): AppFleet {
  const byId = new Map(devices.map((d) => [d.id, d]));
  return {
    matched: devices.filter((d) => d.state !== null && matches(app.spec.scheduling, d.id, d.labels)).map((d) => d.id),
    report: (deviceId) => {
      const reported = byId.get(deviceId)?.state?.apps.find((a) => a.name === app.name);
      if (!reported) return undefined;
      return { revision: reported.revision, phase: reported.phase, ...(reported.heldUntil ? { heldUntil: reported.heldUntil } : {}) };
    },
  };
}
