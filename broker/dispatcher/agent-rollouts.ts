/**
 * Agent rollouts as the hub runs them: the app rollouts' pure state machine (rollout-plan.ts)
 * over an agent target's devices, stored in the rollouts store under `agent/<name>`
 * (agentRolloutKey, never an app name). `agent.upgrade` starts one when a target with a rollout
 * policy gets a new revision; the dispatcher advances the active ones on device reports and on
 * its timer, as it does the apps' (rollouts.ts), and reads a pass of them for every fleet plan.
 *
 * Unlike an app's, a target's first revision rolls out too: its previous revision is then 0,
 * "keep the agent you run" (no agent section). Each device starts from the agent revision it is
 * told at that moment (its stored desired document), so a device that followed another target
 * keeps that one's release until its turn.
 *
 * A rollout's devices are those that follow the target (agent-plan.ts followedTarget), when it
 * starts and at every step: a device a newer target took is no longer the older target's to wait
 * for, and its status leaves it out also once it no longer steps (complete, aborted).
 */
import type { Logger } from 'pino';
import type { DeviceAgentRollout, Labels, RolloutStatus } from '../../shared/index.js';
import { type AgentTargetStore, agentRolloutKey, type StoredAgentTarget } from '../store/agent-targets.js';
import type { DeviceStore, PlannedDevice } from '../store/devices.js';
import type { RolloutStore } from '../store/rollouts.js';
import { type AgentPass, agentReport, followedTarget, revisionsToRead } from './agent-plan.js';
import { ApiError } from './errors.js';
import {
  abortRollout,
  advanceRollout,
  type Candidate,
  pauseRollout,
  type Rollout,
  resumeRollout,
  rolloutStatus,
  startRollout,
} from './rollout-plan.js';
import { saveTransition } from './rollout-transition.js';

export interface AgentRolloutDeps {
  targets: AgentTargetStore;
  devices: DeviceStore;
  rollouts: RolloutStore;
  logger: Logger;
  now?: () => Date;
}

/** The prefix of every agent rollout's key in the rollouts store. */
export const AGENT_ROLLOUT_PREFIX = agentRolloutKey('');

export class AgentRollouts {
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(private readonly deps: AgentRolloutDeps) {
    this.log = deps.logger.child({ component: 'agent-rollouts' });
    this.now = deps.now ?? (() => new Date());
  }

  /**
   * After `agent.upgrade` stored a new revision of the target: starts its rollout when it has a
   * policy; without one every device takes the revision at once and an older rollout is dropped.
   */
  async onNewRevision(name: string): Promise<void> {
    const { targets, rollouts } = this.deps;
    const target = await targets.get(name);
    if (!target) return;
    const key = agentRolloutKey(name);
    if (!target.rollout) {
      await rollouts.delete(key);
      return;
    }
    const previous = (await targets.previousRevision(name, target.revision)) ?? 0;
    // The stored desired documents: what each device is told now, whichever target told it.
    const all = await this.deps.devices.list();
    const following = this.following(target, await targets.list(), all);
    const devices = following.map((d) => ({ id: d.id, from: d.desired?.agent?.revision ?? 0 }));
    const byId = new Map(all.map((d) => [d.id, d]));
    const rollout = startRollout(
      { app: key, revision: target.revision, previousRevision: previous, policy: target.rollout, devices },
      (id) => agentReport(byId.get(id)?.state, target.revision, target.release),
      this.now(),
    );
    await rollouts.save(rollout);
    this.log.info(
      { target: name, revision: target.revision, previousRevision: previous, devices: devices.length },
      'agent rollout started',
    );
  }

  forget(name: string): Promise<void> {
    return this.deps.rollouts.delete(agentRolloutKey(name));
  }

  /**
   * Advances every active agent rollout; true when any changed (desired documents may need
   * republishing). `stored`: the store's active() as just read, when the caller has it.
   */
  async advanceAll(stored?: readonly Rollout[]): Promise<boolean> {
    const active = (stored ?? (await this.deps.rollouts.active())).filter((r) => r.app.startsWith(AGENT_ROLLOUT_PREFIX));
    if (active.length === 0) return false;
    const targets = await this.deps.targets.list();
    const devices = await this.deps.devices.listForPlanning();
    let changed = false;
    for (const rollout of active) changed = (await this.advance(rollout, targets, devices)) || changed;
    return changed;
  }

  /** What one fleet pass plans agent sections from: the targets, their current rollouts, and every release they may assign. */
  async pass(): Promise<AgentPass> {
    const targets = await this.deps.targets.list();
    const rollouts = await this.current(targets);
    const releases = new Map(targets.map((t) => [t.revision, t.release]));
    for (const revision of revisionsToRead(targets, rollouts)) {
      if (releases.has(revision)) continue;
      const stored = await this.deps.targets.revision(revision);
      if (stored) releases.set(revision, stored.release);
    }
    return { targets, rollouts, releases };
  }

  /** The rollout of each of `targets` that has one at its current revision, by target name. */
  async current(targets: readonly StoredAgentTarget[]): Promise<Map<string, Rollout>> {
    const rollouts = new Map<string, Rollout>();
    for (const target of targets) {
      if (!target.rollout) continue;
      const rollout = await this.deps.rollouts.get(agentRolloutKey(target.name));
      if (rollout?.revision === target.revision) rollouts.set(target.name, rollout);
    }
    return rollouts;
  }

  /**
   * What devices' views say of their agent rollout: reads the targets and their rollouts once and
   * answers, per device, the rollout of the target it follows (DeviceView.agentRollout).
   */
  async deviceRollouts(): Promise<(device: { id: string; labels: Labels }) => DeviceAgentRollout | undefined> {
    const targets = await this.deps.targets.list();
    const rollouts = await this.current(targets);
    if (rollouts.size === 0) return () => undefined;
    return (device) => {
      const target = followedTarget(targets, device.id, device.labels);
      const rollout = target && rollouts.get(target.name);
      const held = rollout?.devices.find((d) => d.id === device.id);
      if (!target || !rollout || !held || (rollout.phase === 'complete' && held.state === 'healthy')) return undefined;
      return {
        target: target.name,
        revision: rollout.revision,
        phase: rollout.phase,
        state: held.state,
        ...(held.message !== undefined ? { message: held.message } : {}),
      };
    };
  }

  /**
   * The rollout as stored, less the devices that no longer follow its target: a complete or
   * aborted rollout is not advanced any more, so its stored devices may include one a newer
   * target took since.
   */
  async status(name: string): Promise<RolloutStatus> {
    const rollout = await this.require(name);
    const targets = await this.deps.targets.list();
    const target = targets.find((t) => t.name === name);
    if (!target) throw ApiError.notFound('agent target', name);
    const following = new Set(this.following(target, targets, await this.deps.devices.listForPlanning()).map((d) => d.id));
    return rolloutStatus({ ...rollout, devices: rollout.devices.filter((d) => following.has(d.id)) });
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

  private async transition(name: string, step: (rollout: Rollout, now: Date) => Rollout): Promise<RolloutStatus> {
    const rollout = await saveTransition(`agent target "${name}"`, () => this.require(name), step, this.deps.rollouts, this.now);
    this.log.info({ target: name, revision: rollout.revision, phase: rollout.phase }, 'agent rollout changed by the operator');
    await this.advance(rollout, await this.deps.targets.list(), await this.deps.devices.listForPlanning());
    return this.status(name);
  }

  private async require(name: string): Promise<Rollout> {
    if (!(await this.deps.targets.get(name))) throw ApiError.notFound('agent target', name);
    const rollout = await this.deps.rollouts.get(agentRolloutKey(name));
    if (!rollout) {
      throw new ApiError(
        'not_found',
        `agent target "${name}" has no rollout (it was set without one: agent upgrade --canary, --batch-size …)`,
      );
    }
    return rollout;
  }

  private async advance(rollout: Rollout, targets: readonly StoredAgentTarget[], devices: readonly PlannedDevice[]): Promise<boolean> {
    const name = rollout.app.slice(AGENT_ROLLOUT_PREFIX.length);
    const target = targets.find((t) => t.name === name);
    if (!target || target.revision !== rollout.revision) return false;
    const member = new Map(rollout.devices.map((d) => [d.id, d.from]));
    const following = this.following(target, targets, devices);
    const candidates: Candidate[] = following.map((d) => ({ id: d.id, from: member.get(d.id) ?? rollout.previousRevision }));
    const byId = new Map(following.map((d) => [d.id, d]));
    const next = advanceRollout(rollout, candidates, (id) => agentReport(byId.get(id)?.state, target.revision, target.release), this.now());
    if (next === rollout) return false;
    // Changed meanwhile (an operator's pause, a new revision): the next tick reads it again.
    if (!(await this.deps.rollouts.save(next, rollout))) return false;
    if (next.phase !== rollout.phase) {
      this.log.info({ target: name, revision: next.revision, phase: next.phase, reason: next.reason }, `agent rollout ${next.phase}`);
    }
    return true;
  }

  /** The devices (that have reported state) whose followed target is `target`. */
  private following<D extends PlannedDevice>(target: StoredAgentTarget, targets: readonly StoredAgentTarget[], devices: readonly D[]): D[] {
    return devices.filter((d) => d.state !== null && followedTarget(targets, d.id, d.labels)?.name === target.name);
  }
}
