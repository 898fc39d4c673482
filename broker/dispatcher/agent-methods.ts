/**
 * agent.upgrade, agent.targets, agent.delete, agent.rollout.*: the agent release each device must
 * run (docs/agent-upgrades.md). A call stores a target's new revision; the dispatcher turns it
 * into each selected device's signed `agent` section (agent-plan.ts), through the target's
 * rollout when it has one (agent-rollouts.ts). Like the app methods, these answer on every
 * replica and only say "desired state may have changed": the leader plans.
 */
import type { AgentTargetView, Scheduling } from '../../shared/index.js';
import { type AgentRelease, type AgentTargetStore, agentRolloutKey, type StoredAgentTarget } from '../store/agent-targets.js';
import type { DeviceStore } from '../store/devices.js';
import { type AgentTargetCounts, defaultTargetName, targetCounts } from './agent-plan.js';
import { ReleaseFileError, type ReleasesDir } from './agent-releases.js';
import type { AgentRollouts } from './agent-rollouts.js';
import { ApiError } from './errors.js';
import type { ApiHandlersFor } from './method.js';
import { appViewDevice } from './views.js';

export type AgentMethodName =
  | 'agent.upgrade'
  | 'agent.targets'
  | 'agent.delete'
  | 'agent.rollout.status'
  | 'agent.rollout.pause'
  | 'agent.rollout.resume'
  | 'agent.rollout.abort';

export interface AgentMethodDeps {
  agentTargets: AgentTargetStore;
  agentRollouts: AgentRollouts;
  /** The hub's releases dir (`--releases-dir`), where agent.upgrade finds a version's tarballs. */
  releases: ReleasesDir;
  devices: Pick<DeviceStore, 'fleetRows'>;
  /** Called after any change that can alter what some device must run. */
  desiredMayHaveChanged: () => void;
}

export function agentMethods(deps: AgentMethodDeps): ApiHandlersFor<AgentMethodName> {
  const { agentTargets: targets, agentRollouts: rollouts, releases } = deps;

  /** What the release of `version` is on this hub, or an error naming what it has and how to add one. */
  async function releaseOf(version: string, image: string | undefined, healthTimeout: string | undefined): Promise<AgentRelease> {
    const bundles = await releases.bundles(version).catch((err: Error) => {
      if (!(err instanceof ReleaseFileError)) throw err;
      throw new ApiError('invalid_request', `agent ${version}: ${err.file} in the hub's releases dir ${releases.dir} ${err.problem}`, {
        version,
        releasesDir: releases.dir,
        file: err.file,
      });
    });
    if (Object.keys(bundles).length === 0 && image === undefined) throw await unknownVersion(version);
    return {
      version,
      bundles,
      ...(image !== undefined ? { image } : {}),
      ...(healthTimeout !== undefined ? { healthTimeout } : {}),
    };
  }

  async function unknownVersion(version: string): Promise<ApiError> {
    const build = 'build one with docker/release-bundle.sh <amd64|arm64> (it writes dist/bundles/flotilla-<version>-linux-<arch>.tar.gz)';
    if (releases.dir === undefined) {
      return new ApiError(
        'invalid_request',
        `agent ${version}: this hub has no releases dir; ${build} and start the hub with --releases-dir DIR holding it, or give --image for agents that run as a container`,
      );
    }
    const held = await releases.versions();
    const holds =
      held.length === 0
        ? 'it holds no release'
        : `it holds ${held.map(({ version: v, arches }) => `${v} (${arches.join(', ')})`).join(', ')}`;
    return new ApiError(
      'invalid_request',
      `agent ${version}: no flotilla-${version}-linux-<amd64|arm64>.tar.gz in the hub's releases dir ${releases.dir}; ${holds}. To add ${version}, ${build} and put it in ${releases.dir} (--releases-dir), or give --image for agents that run as a container`,
      { version, releasesDir: releases.dir, available: held },
    );
  }

  /** A status answer after a pause, resume or abort: the rollout may now assign other revisions. */
  const changedStatus = async (status: Promise<Awaited<ReturnType<AgentRollouts['status']>>>) => {
    const answer = await status;
    deps.desiredMayHaveChanged();
    return answer;
  };

  return {
    'agent.upgrade': async ({ name, selectors, devices, version, image, rollout, healthTimeout, retry }) => {
      // An empty device list selects nothing either: a target for no device is a mistake, not a plan.
      if (selectors === undefined && (devices === undefined || devices.length === 0)) {
        throw new ApiError('invalid_request', 'select devices: --selector, --device or --all');
      }
      const scheduling: Scheduling = {
        ...(selectors !== undefined ? { selectors } : {}),
        ...(devices !== undefined ? { devices } : {}),
      };
      const targetName = name ?? defaultTargetName(scheduling);
      const release = await releaseOf(version, image, healthTimeout);
      const { target, changed } = await targets.put(
        { name: targetName, scheduling, release, ...(rollout !== undefined ? { rollout } : {}) },
        { evenIfUnchanged: retry === true },
      );
      if (changed) {
        await rollouts.onNewRevision(targetName);
        deps.desiredMayHaveChanged();
      }
      return {
        name: target.name,
        revision: target.revision,
        version: target.release.version,
        changed,
        ...(target.rollout ? { rollout: agentRolloutKey(target.name) } : {}),
      };
    },

    'agent.targets': async () => {
      const all = await targets.list();
      const counts = targetCounts(all, (await deps.devices.fleetRows()).map(appViewDevice), await rollouts.current(all));
      return { items: all.map((target) => targetView(target, counts.get(target.name))) };
    },

    'agent.delete': async ({ name }) => {
      if (!(await targets.delete(name))) throw ApiError.notFound('agent target', name);
      await rollouts.forget(name);
      deps.desiredMayHaveChanged();
      return { name, deleted: true };
    },

    'agent.rollout.status': ({ name }) => rollouts.status(name),
    'agent.rollout.pause': ({ name }) => changedStatus(rollouts.pause(name)),
    'agent.rollout.resume': ({ name }) => changedStatus(rollouts.resume(name)),
    'agent.rollout.abort': ({ name }) => changedStatus(rollouts.abort(name)),
  };
}

/** The table of a hub built without agent targets (a method table under test): every agent method says so. */
export function unavailableAgentMethods(): ApiHandlersFor<AgentMethodName> {
  const unavailable = () => {
    throw new ApiError('invalid_request', 'agent upgrades are not available on this hub');
  };
  return {
    'agent.upgrade': unavailable,
    'agent.targets': unavailable,
    'agent.delete': unavailable,
    'agent.rollout.status': unavailable,
    'agent.rollout.pause': unavailable,
    'agent.rollout.resume': unavailable,
    'agent.rollout.abort': unavailable,
  };
}

export function targetView(target: StoredAgentTarget, counts: AgentTargetCounts | undefined): AgentTargetView {
  const { release } = target;
  return {
    name: target.name,
    revision: target.revision,
    version: release.version,
    scheduling: target.scheduling,
    arches: Object.keys(release.bundles).sort(),
    ...(release.image !== undefined ? { image: release.image } : {}),
    ...(target.rollout !== undefined ? { rollout: target.rollout } : {}),
    ...(release.healthTimeout !== undefined ? { healthTimeout: release.healthTimeout } : {}),
    devices: counts ?? { matched: 0, running: 0, upgrading: 0, failed: 0, rolledBack: 0 },
    createdAt: target.createdAt,
    updatedAt: target.updatedAt,
  };
}
