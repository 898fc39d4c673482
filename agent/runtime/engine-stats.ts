/**
 * The Engine's stats document (`GET /containers/{id}/stats`) as the
 * runtime-neutral `ContainerCounters`. Pure, so both cgroup versions' shapes
 * are unit-tested from fixtures (test/unit/metrics-engine-stats.test.ts).
 */
import type { ContainerCounters } from './runtime.js';

/** The fields read here; the engine sends many more. */
export interface EngineStats {
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  blkio_stats?: { io_service_bytes_recursive?: { op?: string; value?: number }[] | null };
  pids_stats?: { current?: number };
}

/** Docker reports a stopped container's read time as the zero time and every counter as 0 or absent. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

export function countersFromEngineStats(stats: EngineStats, fallbackReadAtMs: number): ContainerCounters | undefined {
  const cpuNs = stats.cpu_stats?.cpu_usage?.total_usage;
  if (cpuNs === undefined || stats.read === ZERO_TIME) return undefined;
  const memory = stats.memory_stats ?? {};
  const usage = memory.usage ?? 0;
  // As the docker CLI: cgroup v1 reports total_inactive_file, v2 inactive_file.
  const inactive = memory.stats?.total_inactive_file ?? memory.stats?.inactive_file ?? 0;
  let netRxBytes = 0;
  let netTxBytes = 0;
  for (const [name, net] of Object.entries(stats.networks ?? {})) {
    if (name === 'lo') continue;
    netRxBytes += net.rx_bytes ?? 0;
    netTxBytes += net.tx_bytes ?? 0;
  }
  let blkReadBytes = 0;
  let blkWriteBytes = 0;
  // v1 spells the ops "Read"/"Write", v2 "read"/"write".
  for (const entry of stats.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = entry.op?.toLowerCase();
    if (op === 'read') blkReadBytes += entry.value ?? 0;
    else if (op === 'write') blkWriteBytes += entry.value ?? 0;
  }
  const readAt = stats.read === undefined ? Number.NaN : Date.parse(stats.read);
  return {
    cpuNs,
    memBytes: inactive < usage ? usage - inactive : usage,
    ...(memory.limit !== undefined && memory.limit > 0 ? { memLimitBytes: memory.limit } : {}),
    netRxBytes,
    netTxBytes,
    blkReadBytes,
    blkWriteBytes,
    pids: stats.pids_stats?.current ?? 0,
    readAtMs: Number.isFinite(readAt) ? readAt : fallbackReadAtMs,
  };
}
