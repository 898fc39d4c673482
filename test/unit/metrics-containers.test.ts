import { describe, expect, it } from 'vitest';
import { countersFromEngineStats, type EngineStats } from '../../agent/runtime/engine-stats.js';
import type { ContainerCounters, ManagedContainer } from '../../agent/runtime/runtime.js';
import { ContainerSampler, containerMetrics } from '../../agent/telemetry/metrics/containers.js';
import { ContainerMetrics, validate } from '../../shared/index.js';

const GiB = 1024 ** 3;
const machine = { cpuCount: 4, memTotalBytes: 4 * GiB };

function managed(overrides: Partial<ManagedContainer> = {}): ManagedContainer {
  return {
    id: 'c1',
    dockerName: 'shop_web',
    app: 'shop',
    container: 'web',
    appRevision: 1,
    specHash: 'h',
    image: 'web:v1',
    state: 'running',
    status: 'Up 1 minute',
    restartCount: 2,
    startedAt: '2030-01-01T00:00:00.000Z',
    pid: 4242,
    ...overrides,
  };
}

function counters(overrides: Partial<ContainerCounters> = {}): ContainerCounters {
  return {
    cpuNs: 0,
    memBytes: 10_000_000,
    memLimitBytes: 64 * 1024 * 1024,
    netRxBytes: 1,
    netTxBytes: 2,
    blkReadBytes: 3,
    blkWriteBytes: 4,
    pids: 5,
    readAtMs: Date.parse('2030-01-01T00:00:10.000Z'),
    ...overrides,
  };
}

describe('containerMetrics', () => {
  it('is the CPU time between two readings over the wall time and all CPUs', () => {
    const previous = counters({ cpuNs: 1e9 });
    // 2 s of CPU in 10 s on 4 cores: 5%.
    const now = counters({ cpuNs: 3e9, readAtMs: previous.readAtMs + 10_000 });
    const metrics = containerMetrics(managed(), now, previous, machine);
    expect(validate(ContainerMetrics, metrics).ok).toBe(true);
    expect(metrics).toEqual({
      app: 'shop',
      container: 'web',
      id: 'c1',
      restartCount: 2,
      cpuPercent: 5,
      memBytes: 10_000_000,
      memLimitBytes: 64 * 1024 * 1024,
      netRxBytes: 1,
      netTxBytes: 2,
      blkReadBytes: 3,
      blkWriteBytes: 4,
      pids: 5,
    });
  });

  it('measures a container first seen (or restarted: its counter began again) since it started', () => {
    // Started 10 s before the reading and used 4 s of CPU on 4 cores: 10%.
    const now = counters({ cpuNs: 4e9 });
    expect(containerMetrics(managed(), now, undefined, machine).cpuPercent).toBe(10);
    expect(containerMetrics(managed(), now, counters({ cpuNs: 9e9 }), machine).cpuPercent).toBe(10);
  });

  it('leaves out a limit at or above the host memory: that is no limit', () => {
    expect(containerMetrics(managed(), counters({ memLimitBytes: 4 * GiB }), undefined, machine)).not.toHaveProperty('memLimitBytes');
    expect(containerMetrics(managed(), counters({ memLimitBytes: Number('9223372036854771712') }), undefined, machine)).not.toHaveProperty(
      'memLimitBytes',
    );
  });

  it('reports a container without counters (not running) with zero usage and its restart count', () => {
    const metrics = containerMetrics(managed({ state: 'restarting', restartCount: 7 }), undefined, undefined, machine);
    expect(validate(ContainerMetrics, metrics).ok).toBe(true);
    expect(metrics).toMatchObject({ cpuPercent: 0, memBytes: 0, pids: 0, restartCount: 7 });
  });
});

describe('ContainerSampler', () => {
  it('prefers the cgroup files, asks the engine when they are unreadable, and skips containers not running', async () => {
    const asked: string[] = [];
    const fallbacks: string[] = [];
    const sampler = new ContainerSampler({
      cgroups: { read: async (target) => (target.id === 'files' ? counters({ memBytes: 111 }) : undefined) },
      runtime: {
        stats: async (id) => {
          asked.push(id);
          return counters({ memBytes: 222 });
        },
      },
      onEngineFallback: (c) => fallbacks.push(c.id),
    });
    const sample = await sampler.sample(
      [
        managed({ id: 'files' }),
        managed({ id: 'in-other-pid-namespace' }),
        managed({ id: 'no-pid', pid: undefined }),
        managed({ id: 'stopped', state: 'exited', pid: undefined }),
      ],
      machine,
    );
    expect(sample.map((m) => m.memBytes)).toEqual([111, 222, 222, 0]);
    // Containers are read concurrently: the order of the questions is not part of the contract.
    expect(asked.sort()).toEqual(['in-other-pid-namespace', 'no-pid']);
    expect(fallbacks.sort()).toEqual(asked);
  });

  it('keeps the previous reading per container, for the next CPU %', async () => {
    let reading = counters({ cpuNs: 0, readAtMs: 1_000_000 });
    const sampler = new ContainerSampler({ cgroups: { read: async () => reading }, runtime: { stats: async () => undefined } });
    await sampler.prime([managed()]);
    reading = counters({ cpuNs: 1e9, readAtMs: 1_001_000 });
    const [metrics] = await sampler.sample([managed()], machine);
    expect(metrics?.cpuPercent).toBe(25);
  });

  it('survives an engine error for one container', async () => {
    const errors: string[] = [];
    const sampler = new ContainerSampler({
      cgroups: { read: async () => undefined },
      runtime: {
        stats: async () => {
          throw new Error('engine down');
        },
      },
      onError: (_c, err) => errors.push(err.message),
    });
    expect((await sampler.sample([managed()], machine))[0]).toMatchObject({ memBytes: 0, restartCount: 2 });
    expect(errors).toEqual(['engine down']);
  });
});

describe('countersFromEngineStats', () => {
  // Trimmed from GET /containers/{id}/stats?stream=false&one-shot=true on Docker 20.10 (cgroup v1).
  const V1: EngineStats = {
    read: '2026-11-28T09:23:46.175615375Z',
    pids_stats: { current: 1 },
    blkio_stats: {
      io_service_bytes_recursive: [
        { op: 'Read', value: 4096 },
        { op: 'Write', value: 512 },
        { op: 'Total', value: 4608 },
      ],
    },
    cpu_stats: { cpu_usage: { total_usage: 40932292500 } },
    memory_stats: { usage: 1585152, limit: 67108864, stats: { inactive_file: 675840, total_inactive_file: 675840 } },
    networks: { eth0: { rx_bytes: 946, tx_bytes: 10 }, eth1: { rx_bytes: 4, tx_bytes: 6 } },
  };

  it('reads a cgroup v1 document', () => {
    expect(countersFromEngineStats(V1, 0)).toEqual({
      cpuNs: 40932292500,
      memBytes: 1585152 - 675840,
      memLimitBytes: 67108864,
      netRxBytes: 950,
      netTxBytes: 16,
      blkReadBytes: 4096,
      blkWriteBytes: 512,
      pids: 1,
      readAtMs: Date.parse('2026-11-28T09:23:46.175Z'),
    });
  });

  it('reads a cgroup v2 document (lower-case ops, inactive_file, no networks under host networking)', () => {
    const v2: EngineStats = {
      read: '2026-11-28T09:23:46Z',
      cpu_stats: { cpu_usage: { total_usage: 5 } },
      memory_stats: { usage: 9000, limit: 8 * GiB, stats: { inactive_file: 1000 } },
      blkio_stats: {
        io_service_bytes_recursive: [
          { op: 'read', value: 7 },
          { op: 'write', value: 8 },
        ],
      },
      pids_stats: { current: 3 },
    };
    expect(countersFromEngineStats(v2, 0)).toMatchObject({ memBytes: 8000, netRxBytes: 0, blkReadBytes: 7, blkWriteBytes: 8, pids: 3 });
  });

  it('has no counters for a stopped container (zero read time)', () => {
    expect(countersFromEngineStats({ read: '0001-01-01T00:00:00Z', cpu_stats: { cpu_usage: { total_usage: 0 } } }, 0)).toBeUndefined();
    expect(countersFromEngineStats({}, 0)).toBeUndefined();
  });
});
