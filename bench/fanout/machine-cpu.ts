/**
 * Where a fan-out's CPU went on a shared machine, besides the hub processes the bench starts:
 * the private Redis and PostgreSQL of `--replicas`, and the whole machine (other engineers' work
 * included), from /proc. On 2 cores, replicas, Redis, PostgreSQL and the simulators compete for
 * the same CPU, and whatever else runs takes from them too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readCpuTicks } from '../footprint/proc.js';

/** All cores' busy and total clock ticks since boot (/proc/stat's first line; idle and iowait are not busy). */
export function machineTicks(): { busy: number; total: number } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const ticks = fields.map(Number);
  const total = ticks.slice(0, 8).reduce((sum, t) => sum + t, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: total - idle, total };
}

/** utime + stime of every live process whose command line (arguments joined by spaces) `matches`. */
export function processTicks(matches: (cmdline: string) => boolean): number {
  let sum = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (matches(cmdline)) sum += readCpuTicks(Number(entry));
    } catch {
      // Gone since the listing.
    }
  }
  return sum;
}

/** The redis-server serving `url` (it names its address in its process title). */
export function redisServerTicks(url: string): number {
  const { port } = new URL(url);
  return processTicks((cmdline) => cmdline.startsWith('/usr/bin/redis-server ') && cmdline.includes(`:${port}`));
}

/**
 * The whole PostgreSQL server listening on `url`'s port (its postmaster is started with `-p PORT`,
 * test/support/postgres.ts): the postmaster, its live children (backends, writers) and the children
 * it has reaped (a pooled connection closed when idle takes its CPU to the postmaster's cutime), so
 * a backend that exits between two readings is not lost.
 */
export function postgresServerTicks(url: string): number {
  const { port } = new URL(url);
  let sum = 0;
  for (const postmaster of pids()) {
    const cmdline = cmdlineOf(postmaster);
    if (!cmdline?.includes('/postgres -D ') || !cmdline.includes(` -p ${port} `)) continue;
    const own = statFields(postmaster);
    // Fields 14–17 (utime, stime, cutime, cstime) are at 11–14 counted from field 3.
    if (own) sum += Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
    for (const pid of pids()) {
      if (Number(statFields(pid)?.[1]) === postmaster) sum += readCpuTicksOrZero(pid);
    }
  }
  return sum;
}

function pids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/** /proc/PID/stat's fields from field 3 (state) on: the command name before them may hold spaces. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function readCpuTicksOrZero(pid: number): number {
  try {
    return readCpuTicks(pid);
  } catch {
    return 0;
  }
}
