/**
 * What the agent has on the device itself: the container runtime, its own
 * small store, and what it says about itself; with the Docker Engine, also
 * the engine's side of the agent's own image download (one Dockerode client
 * for both, and the digest references it loaded, which the runtime resolves).
 */
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { DeviceState } from '../../shared/index.js';
import type { AgentConfig } from '../config.js';
import { dockerArch } from '../host.js';
import { DockerEngineImages } from '../images/engine-load.js';
import { ImageAliases } from '../images/image-aliases.js';
import type { EngineImages } from '../images/types.js';
import { LocalStore } from '../local-store.js';
import { DockerRuntime } from '../runtime/docker-runtime.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import { TelemetrySeq } from '../telemetry/seq.js';

export interface Device {
  runtime: ContainerRuntime;
  store: LocalStore;
  /** One seq source for log batches and metric samples (events keep their own persisted seq). */
  telemetrySeq: TelemetrySeq;
  /** The labels the device reports; `arch` lets specs select devices by CPU architecture, an explicit label wins. */
  labels: DeviceState['labels'];
  /** Where the agent's own download loads images; absent for a runtime given to the agent, whose images come by its own pull. */
  engineImages?: { engine: EngineImages; aliases: ImageAliases };
}

export function openDevice(config: AgentConfig, runtime: ContainerRuntime | undefined, logger: Logger, closer: Closer): Device {
  const store = new LocalStore(config.dataDir);
  // Closed last: an aborted reconcile tick and the link's final writes come before it.
  closer.add('agent.db', () => store.close());
  const common = { store, telemetrySeq: new TelemetrySeq(store.nextBoot()), labels: { arch: dockerArch(), ...config.labels } };
  if (runtime) return { runtime, ...common };
  const docker = new Dockerode();
  const aliases = ImageAliases.inDataDir(config.dataDir, logger.child({ component: 'images' }));
  return {
    runtime: new DockerRuntime(docker, logger.child({ component: 'docker' }), {
      // Only this device's containers: another agent on the same engine is not ours to reconcile.
      deviceId: config.deviceId,
      imageAliases: aliases,
    }),
    engineImages: { engine: new DockerEngineImages(docker), aliases },
    ...common,
  };
}
