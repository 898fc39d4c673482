/**
 * Parsers for the /proc files the host sampler reads: text in, numbers out,
 * no I/O (fixtures in test/unit/metrics-procfs.test.ts). Every parser
 * tolerates lines it does not know, since kernels add fields over time.
 */

/** The aggregate `cpu` line of /proc/stat, in USER_HZ ticks since boot. */
export interface CpuTimes {
  /** Ticks spent doing anything but idle and iowait. */
  busy: number;
  /** Every tick, busy or not. */
  total: number;
}

export interface ProcStat {
  cpu: CpuTimes;
  /** How many `cpuN` lines there are: the online CPUs. */
  cpuCount: number;
}

/**
 * /proc/stat: `cpu  user nice system idle iowait irq softirq steal guest guest_nice`.
 * guest and guest_nice are already counted in user and nice, so they are left
 * out of the total [proc(5)]; iowait is idle time waiting on a disk.
 */
export function parseProcStat(text: string): ProcStat {
  let cpu: CpuTimes | undefined;
  let cpuCount = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('cpu ')) {
      const f = fields(line.slice(4)).map(Number);
      const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
      const total = user + nice + system + idle + iowait + irq + softirq + steal;
      cpu = { busy: total - idle - iowait, total };
    } else if (/^cpu\d+ /.test(line)) {
      cpuCount++;
    }
  }
  if (!cpu) throw new Error('/proc/stat: no aggregate cpu line');
  return { cpu, cpuCount: Math.max(1, cpuCount) };
}

export interface LoadAverage {
  load1: number;
  load5: number;
  load15: number;
}

/** /proc/loadavg: `0.21 0.97 1.78 2/345 6789`. */
export function parseLoadavg(text: string): LoadAverage {
  const [load1, load5, load15] = fields(text).slice(0, 3).map(Number);
  if (load1 === undefined || load5 === undefined || load15 === undefined || [load1, load5, load15].some(Number.isNaN)) {
    throw new Error(`/proc/loadavg: unexpected "${text.trim()}"`);
  }
  return { load1, load5, load15 };
}

export interface MemInfo {
  memTotalBytes: number;
  memAvailableBytes: number;
  memUsedBytes: number;
}

/**
 * /proc/meminfo, values in kB. Used = total − available, as `free` computes
 * it since procps 3.3.10. Kernels before 3.14 have no MemAvailable; there it
 * is approximated as free + buffers + cached, as `free` did then.
 */
export function parseMeminfo(text: string): MemInfo {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\w+):\s+(\d+)/.exec(line);
    if (match) kb.set(match[1]!, Number(match[2]));
  }
  const total = kb.get('MemTotal');
  if (total === undefined) throw new Error('/proc/meminfo: no MemTotal');
  const available = kb.get('MemAvailable') ?? (kb.get('MemFree') ?? 0) + (kb.get('Buffers') ?? 0) + (kb.get('Cached') ?? 0);
  const memTotalBytes = total * 1024;
  const memAvailableBytes = Math.min(available * 1024, memTotalBytes);
  return { memTotalBytes, memAvailableBytes, memUsedBytes: memTotalBytes - memAvailableBytes };
}

export interface NetBytes {
  rxBytes: number;
  txBytes: number;
}

/**
 * /proc/net/dev (the host's, or /proc/<pid>/net/dev for a container's network
 * namespace): received and transmitted bytes summed over every interface but
 * loopback, whose traffic never leaves the machine.
 */
export function parseNetDev(text: string): NetBytes {
  let rxBytes = 0;
  let txBytes = 0;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue; // the two header lines have "|" but no ":"
    const name = line.slice(0, colon).trim();
    if (name === 'lo') continue;
    const f = fields(line.slice(colon + 1));
    // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit: bytes …
    const rx = Number(f[0]);
    const tx = Number(f[8]);
    if (Number.isFinite(rx)) rxBytes += rx;
    if (Number.isFinite(tx)) txBytes += tx;
  }
  return { rxBytes, txBytes };
}

/** /proc/uptime: `9263.45 17812.23` — seconds since boot, then idle seconds summed over CPUs. */
export function parseUptime(text: string): number {
  const seconds = Number(fields(text)[0]);
  if (!Number.isFinite(seconds)) throw new Error(`/proc/uptime: unexpected "${text.trim()}"`);
  return seconds;
}

function fields(text: string): string[] {
  return text.trim().split(/\s+/);
}
