/**
 * Per-container metrics: cumulative counters (cgroup files first, the
 * engine's stats API when they cannot be read — see cgroup.ts for why) turned
 * into a sample, CPU % being the rate between this reading and the previous.
 *
 * Every managed container is in the sample, running or not: a crash-looping
 * container spends most of its time not running, and its restart count is
 * exactly what the operator wants to see. Without counters (not running, or
 * gone between list and read) its usage reads as zero.
 */
import type { ContainerMetrics } from '../../../shared/index.js';
import type { ContainerCounters, ContainerRuntime, ManagedContainer } from '../../runtime/runtime.js';
import type { CgroupTarget } from './cgroup.js';
import { cpuPercentOfMachine } from './cpu.js';

export interface MachineFacts {
  cpuCount: number;
  memTotalBytes: number;
}

/**
 * One container's sample from its counters now and at the previous sample.
 *
 * CPU % covers the time since the previous reading. Without one (the
 * container is new since the last sample, or restarted and its counter began
 * again) it covers the time since the container started, which is then the
 * same window or shorter.
 *
 * A limit at or above the host's memory limits nothing (cgroup v1 writes
 * "unlimited" as 2^63 rounded to a page, the engine API as the host's
 * memory): then `memLimitBytes` is absent, as the schema says.
 */
export function containerMetrics(
  container: ManagedContainer,
  now: ContainerCounters | undefined,
  previous: ContainerCounters | undefined,
  machine: MachineFacts,
): ContainerMetrics {
  const base = { app: container.app, container: container.container, id: container.id, restartCount: container.restartCount };
  if (!now) {
    return { ...base, cpuPercent: 0, memBytes: 0, netRxBytes: 0, netTxBytes: 0, blkReadBytes: 0, blkWriteBytes: 0, pids: 0 };
  }
  let cpuPercent = 0;
  if (previous && now.cpuNs >= previous.cpuNs) {
    cpuPercent = cpuPercentOfMachine(now.cpuNs - previous.cpuNs, (now.readAtMs - previous.readAtMs) * 1e6, machine.cpuCount);
  } else if (container.startedAt !== undefined) {
    cpuPercent = cpuPercentOfMachine(now.cpuNs, (now.readAtMs - Date.parse(container.startedAt)) * 1e6, machine.cpuCount);
  }
  const limited = now.memLimitBytes !== undefined && now.memLimitBytes < machine.memTotalBytes;
  return {
    ...base,
    cpuPercent,
    memBytes: now.memBytes,
    ...(limited ? { memLimitBytes: now.memLimitBytes } : {}),
    netRxBytes: now.netRxBytes,
    netTxBytes: now.netTxBytes,
    blkReadBytes: now.blkReadBytes,
    blkWriteBytes: now.blkWriteBytes,
    pids: now.pids,
  };
}

export interface CounterSources {
  cgroups: { read(target: CgroupTarget): Promise<ContainerCounters | undefined> };
  runtime: Pick<ContainerRuntime, 'stats'>;
  /** Called when a running container's counters had to come from the engine. */
  onEngineFallback?: (container: ManagedContainer) => void;
  /** Called when neither source answered for a running container. */
  onError?: (container: ManagedContainer, err: Error) => void;
}

/** Keeps each container's previous counters between samples. */
export class ContainerSampler {
  private previous = new Map<string, ContainerCounters>();

  constructor(private readonly sources: CounterSources) {}

  /** Reads the counters once, so that the first sample already has an interval to measure over. */
  async prime(containers: readonly ManagedContainer[]): Promise<void> {
    await this.sample(containers, { cpuCount: 1, memTotalBytes: 0 });
  }

  async sample(containers: readonly ManagedContainer[], machine: MachineFacts): Promise<ContainerMetrics[]> {
    const counters = await Promise.all(containers.map((c) => this.countersOf(c)));
    const next = new Map<string, ContainerCounters>();
    const metrics = containers.map((container, i) => {
      const now = counters[i];
      if (now) next.set(container.id, now);
      return containerMetrics(container, now, this.previous.get(container.id), machine);
    });
    // Only containers still there are remembered: removed ones do not accumulate.
    this.previous = next;
    return metrics;
  }

  private async countersOf(container: ManagedContainer): Promise<ContainerCounters | undefined> {
    if (container.state !== 'running') return undefined;
    if (container.pid !== undefined) {
      const target: CgroupTarget = {
        id: container.id,
        pid: container.pid,
        ...(container.networkMode !== undefined ? { networkMode: container.networkMode } : {}),
      };
      const fromFiles = await this.sources.cgroups.read(target);
      if (fromFiles) return fromFiles;
    }
    this.sources.onEngineFallback?.(container);
    try {
      return await this.sources.runtime.stats(container.id);
    } catch (err) {
      this.sources.onError?.(container, err as Error);
      return undefined;
    }
  }
}
