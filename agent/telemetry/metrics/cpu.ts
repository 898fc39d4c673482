/**
 * CPU percentages from two readings of cumulative counters. Every percentage
 * in a sample is of the whole machine, all cores together (0–100), so a
 * container busy on one core of four reads 25, and host, containers and the
 * agent add up.
 */
import type { CpuTimes } from './procfs.js';

/** Host CPU %: busy ticks over all ticks between two /proc/stat readings. */
export function hostCpuPercent(previous: CpuTimes, current: CpuTimes): number {
  const total = current.total - previous.total;
  const busy = current.busy - previous.busy;
  // No tick between the readings, or counters that went back (a reading
  // from before a CPU went offline): nothing measurable.
  if (total <= 0 || busy < 0) return 0;
  return clampPercent((busy / total) * 100);
}

/**
 * CPU % of a process or cgroup: CPU time used over the wall time between two
 * readings times the CPU count. Times in any one unit (ns here).
 */
export function cpuPercentOfMachine(cpuTimeDelta: number, wallTimeDelta: number, cpuCount: number): number {
  if (wallTimeDelta <= 0 || cpuTimeDelta <= 0 || cpuCount < 1) return 0;
  return clampPercent((cpuTimeDelta / (wallTimeDelta * cpuCount)) * 100);
}

/**
 * Readings a few ms apart can overshoot 100 by scheduling jitter (the CPU
 * time and the clock are not read atomically); the schema promises 0–100.
 * Two decimals are plenty for a dashboard and keep the JSON short.
 */
function clampPercent(percent: number): number {
  return Math.round(Math.min(100, Math.max(0, percent)) * 100) / 100;
}
