/** What the agent has on the device itself: the container runtime, its own small store, and what it says about itself. */
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { DeviceState } from '../../shared/index.js';
import type { AgentConfig } from '../config.js';
import { dockerArch } from '../host.js';
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
}

export function openDevice(config: AgentConfig, runtime: ContainerRuntime | undefined, logger: Logger, closer: Closer): Device {
  const store = new LocalStore(config.dataDir);
  // Closed last: an aborted reconcile tick and the link's final writes come before it.
  closer.add('agent.db', () => store.close());
  return {
    runtime:
      runtime ??
      new DockerRuntime(new Dockerode(), logger.child({ component: 'docker' }), {
        // Only this device's containers: another agent on the same engine is not ours to reconcile.
        deviceId: config.deviceId,
      }),
    store,
    telemetrySeq: new TelemetrySeq(store.nextBoot()),
    labels: { arch: dockerArch(), ...config.labels },
  };
}
