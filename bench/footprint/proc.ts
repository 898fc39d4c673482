/**
 * One process's memory and CPU as the kernel counts them, for the footprint
 * benchmark: resident set from /proc/<pid>/status (VmRSS, split into
 * anonymous and file-backed pages: the node binary's own code and read-only
 * data are file-backed, shared with every other node process and droppable
 * under memory pressure, but counted in RSS all the same), CPU time from
 * /proc/<pid>/stat (utime + stime, in clock ticks).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface MemorySample {
  /** KiB, as /proc reports them. */
  rssKb: number;
  anonKb: number;
  fileKb: number;
}

export function readMemory(pid: number): MemorySample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssKb: field('VmRSS'), anonKb: field('RssAnon'), fileKb: field('RssFile') };
}

/** utime + stime of the whole process (every thread), in clock ticks. */
export function readCpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  return Number(fields[11]) + Number(fields[12]);
}

let ticksPerSecond: number | undefined;

/** The kernel's USER_HZ (100 on every Linux this runs on, but asked, not assumed). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}
