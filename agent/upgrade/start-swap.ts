/**
 * `startContainerSwap`: how an agent that runs as a container hands its own
 * replacement to a swap container (container-swap.ts). The new image must be
 * on the engine already (pulled by digest); the swap container is made from
 * the running agent's OWN image, the one known to work, with the same mounts,
 * network, user and groups, so it reaches the engine and the data dir as the
 * agent does.
 *
 * The swap file is written before the swap container exists: a swap container
 * always finds its work in the file, and a later swap never mistakes an
 * earlier one's finished file for its own.
 */
import { mkdirSync, rmSync } from 'node:fs';
import type { DesiredAgent } from '../../shared/index.js';
import { parseDuration } from '../../shared/schemas/units.js';
import { DEFAULT_MAX_CRASHES, heldMarker } from './container-swap.js';
import type { SwapEngine } from './swap-engine.js';
import { swapNames, upgradeFiles, writeSwapState } from './swap-state.js';

export const DEFAULT_HEALTH_TIMEOUT_SECONDS = 300;
/** Marks a swap container, with the agent container it swaps as its value. */
export const SWAP_LABEL = 'org.flotilla.agent-swap';

export interface ContainerSwapRequest {
  /** The agent container's name (FLOTILLA_AGENT_CONTAINER). */
  container: string;
  /** The agent's data dir, the same path in every agent container. */
  dataDir: string;
  /** The version this agent runs. */
  fromVersion: string;
  maxCrashes?: number;
}

export class SwapBusyError extends Error {
  override readonly name = 'SwapBusyError';
}

/** Creates and starts `<container>-swap`; resolves once it runs (the swap itself then stops this agent). */
export async function startContainerSwap(
  engine: SwapEngine,
  desired: DesiredAgent & { image: string },
  request: ContainerSwapRequest,
): Promise<{ swapId: string }> {
  const names = swapNames(request.container);
  const self = await engine.inspect(names.container);
  if (self === undefined) {
    throw new Error(`no container named ${names.container} runs this agent (FLOTILLA_AGENT_CONTAINER): it cannot be swapped`);
  }
  const earlier = await engine.inspect(names.swap);
  if (earlier?.running) throw new SwapBusyError(`a swap of ${names.container} is under way (${names.swap} runs)`);
  if (earlier) await engine.remove(earlier.id);

  const healthTimeoutSeconds =
    desired.healthTimeout !== undefined ? Math.ceil(parseDuration(desired.healthTimeout) / 1000) : DEFAULT_HEALTH_TIMEOUT_SECONDS;
  const maxCrashes = request.maxCrashes ?? DEFAULT_MAX_CRASHES;
  mkdirSync(upgradeFiles(request.dataDir).upgradeDir, { recursive: true });
  rmSync(heldMarker(request.dataDir), { force: true });
  writeSwapState(request.dataDir, {
    step: 'begin',
    container: names.container,
    to: desired.image,
    version: desired.version,
    fromVersion: request.fromVersion,
    revision: desired.revision,
    healthTimeoutSeconds,
    maxCrashes,
    oldId: '',
    restartPolicy: 'always',
    restartRetries: 0,
    deadline: 0,
    reason: '',
    outcome: '',
  });

  const config = self.raw.Config;
  const swapId = await engine.create(names.swap, {
    Image: self.imageId,
    ...(config.Entrypoint ? { Entrypoint: config.Entrypoint as string[] } : {}),
    // The arguments say what the swap does (docker ps shows it); the swap file is what it follows.
    Cmd: [
      'agent',
      'swap',
      '--data-dir',
      request.dataDir,
      '--container',
      names.container,
      '--to',
      desired.image,
      '--version',
      desired.version,
      '--from-version',
      request.fromVersion,
      '--revision',
      String(desired.revision),
      '--health-timeout',
      `${healthTimeoutSeconds}s`,
      '--max-crashes',
      String(maxCrashes),
    ],
    Env: config.Env ?? [],
    User: config.User,
    Labels: { [SWAP_LABEL]: names.container },
    HostConfig: {
      ...self.raw.HostConfig,
      // An engine that comes back after a power cut starts it again; at its end it sets its own policy to `no`.
      RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
    },
  });
  await engine.start(swapId);
  return { swapId };
}
