/**
 * The agent's own upgrade (agent/upgrade/): it follows the `agent` section of
 * each accepted desired document, confirms a release on trial when the hub
 * acknowledges a state report, and reports through the uplink's events and
 * the state report. It acts only when the launcher started the agent
 * (FLOTILLA_RELEASES_DIR); otherwise it says once that it cannot. An agent
 * that runs as a container (FLOTILLA_AGENT_CONTAINER) swaps its container
 * instead (wiring/container-upgrade.ts).
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AgentConfig } from '../config.js';
import { hostFacts } from '../host.js';
import type { ImageSource } from '../images/image-source.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import { hubHttpUrl } from '../upgrade/hub-http-url.js';
import { AgentUpgrader, type UpgraderDeps } from '../upgrade/upgrader.js';
import { openContainerUpgrade } from './container-upgrade.js';
import type { Uplink } from './uplink.js';

/** What the agent holds of its own upgrade, whichever way it was installed. */
export type SelfUpgrade = Pick<AgentUpgrader, 'report' | 'changed' | 'setDesired' | 'stateAcknowledged' | 'close'>;

export interface AgentUpgradeWiring {
  uplink: Uplink;
  logger: Logger;
  /** Overrides for tests: the prefix, the running version, the restart. */
  overrides?: Partial<UpgraderDeps>;
  /** The engine the agent drives: an agent that runs as a container pulls its new image there. */
  runtime?: ContainerRuntime;
  /** How that image is fetched (the agent's image puller). */
  images?: ImageSource;
}

/**
 * The restart after a switch: the agent's own SIGTERM handling (the CLI's
 * graceful stop, which leaves app containers running), then exit 0.
 */
function gracefulRestart(): void {
  process.kill(process.pid, 'SIGTERM');
}

export function openAgentUpgrade(
  config: AgentConfig,
  { uplink, logger, overrides = {}, runtime, images }: AgentUpgradeWiring,
  closer: Closer,
): SelfUpgrade {
  const container = process.env.FLOTILLA_AGENT_CONTAINER;
  if (container && runtime)
    return openContainerUpgrade(config, container, { uplink, logger, runtime, ...(images ? { images } : {}) }, closer);
  const upgrader = new AgentUpgrader({
    releasesDir: process.env.FLOTILLA_RELEASES_DIR,
    running: hostFacts().agentVersion,
    hubHttpUrl: hubHttpUrl(config),
    ca: config.ca,
    logger,
    event: (event) => uplink.event(event),
    restart: gracefulRestart,
    ...overrides,
  });
  closer.add('agent upgrade', () => upgrader.close());
  uplink.stateAcknowledged.on(() => upgrader.stateAcknowledged());
  upgrader.start();
  return upgrader;
}
