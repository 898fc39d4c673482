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

/** The PostgreSQL backends connected to `database` (their process title names user and database). */
export function postgresBackendTicks(database: string): number {
  return processTicks((cmdline) => cmdline.startsWith('postgres: ') && cmdline.split(' ')[2] === database);
}
