/**
 * The hub's part in agent upgrades (docs/agent-upgrades.md): the agent targets' rollouts, which the
 * API starts and steers and the dispatcher advances and plans from, and what the agent.* methods
 * need: the targets, the rollouts, the releases dir they find a version's tarballs in.
 */
import type { Logger } from 'pino';
import type { HubConfig } from '../config.js';
import type { AgentMethodDeps } from '../dispatcher/agent-methods.js';
import { ReleasesDir } from '../dispatcher/agent-releases.js';
import { AgentRollouts } from '../dispatcher/agent-rollouts.js';
import { releasesDirOf } from './http.js';
import type { HubStores } from './stores.js';

export interface HubAgentUpgrades {
  /** For the dispatcher: advanced with the app rollouts, read by every fleet plan. */
  rollouts: AgentRollouts;
  /** For the API (agent-methods.ts). */
  methods: AgentMethodDeps;
}

export function agentUpgrades(
  config: Pick<HubConfig, 'releasesDir'>,
  stores: Pick<HubStores, 'agentTargets' | 'devices' | 'rollouts'>,
  deps: { logger: Logger; now: () => Date; desiredMayHaveChanged: () => void },
): HubAgentUpgrades {
  const rollouts = new AgentRollouts({
    targets: stores.agentTargets,
    devices: stores.devices,
    // One store for app and agent rollouts, told apart by key (agentRolloutKey).
    rollouts: stores.rollouts.store,
    logger: deps.logger,
    now: deps.now,
  });
  return {
    rollouts,
    methods: {
      agentTargets: stores.agentTargets,
      agentRollouts: rollouts,
      releases: new ReleasesDir(releasesDirOf(config), deps.logger.child({ component: 'releases-dir' })),
      devices: stores.devices,
      desiredMayHaveChanged: deps.desiredMayHaveChanged,
    },
  };
}
