/**
 * The own upgrade of an agent that runs as a container (agent/upgrade/container-upgrader.ts):
 * chosen by wiring/agent-upgrade.ts when FLOTILLA_AGENT_CONTAINER names the
 * container (docker/install.sh --mode image sets it). It pulls through the
 * agent's runtime and drives the engine for its own containers through a
 * client of its own, as wiring/device.ts makes the runtime's.
 */
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AgentConfig } from '../config.js';
import { hostFacts } from '../host.js';
import type { ImageSource } from '../images/image-source.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import { ContainerUpgrader, type ContainerUpgraderDeps } from '../upgrade/container-upgrader.js';
import { dockerSwapEngine } from '../upgrade/swap-engine.js';
import type { Uplink } from './uplink.js';

export function openContainerUpgrade(
  config: AgentConfig,
  container: string,
  {
    uplink,
    logger,
    runtime,
    images,
    overrides = {},
  }: { uplink: Uplink; logger: Logger; runtime: ContainerRuntime; images?: ImageSource; overrides?: Partial<ContainerUpgraderDeps> },
  closer: Closer,
): ContainerUpgrader {
  const upgrader = new ContainerUpgrader({
    container,
    dataDir: config.dataDir,
    running: hostFacts().agentVersion,
    runtime,
    ...(images ? { images } : {}),
    engine: dockerSwapEngine(new Dockerode()),
    logger,
    event: (event) => uplink.event(event),
    ...overrides,
  });
  closer.add('agent upgrade', () => upgrader.close());
  uplink.stateAcknowledged.on(() => upgrader.stateAcknowledged());
  upgrader.start();
  return upgrader;
}
