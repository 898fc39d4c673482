/**
 * Host metrics from /proc, /sys and statfs: a handful of small file reads per
 * sample, no process spawned. Holds the previous /proc/stat reading, since CPU %
 * is a rate between two samples.
 */
import { join } from 'node:path';
import type { HostMetrics } from '../../../shared/index.js';
import { hostCpuPercent } from './cpu.js';
import { type DiskPath, readDisks } from './disks.js';
import { readKernelFile } from './kernel-file.js';
import { type CpuTimes, parseLoadavg, parseMeminfo, parseNetDev, parseProcStat, parseUptime } from './procfs.js';
import { readHottestZone } from './thermal.js';

export interface HostSamplerOptions {
  /** Where procfs is mounted (tests point it at fixtures). */
  procDir?: string;
  /** Where the thermal zones are. */
  thermalDir?: string;
}

export class HostSampler {
  private readonly procDir: string;
  private readonly thermalDir: string;
  private previousCpu: CpuTimes | undefined;

  constructor(options: HostSamplerOptions = {}) {
    this.procDir = options.procDir ?? '/proc';
    this.thermalDir = options.thermalDir ?? '/sys/class/thermal';
  }

  /** Takes the first CPU reading, so that the first sample already has an interval to measure over. */
  prime(): void {
    this.previousCpu = parseProcStat(this.read('stat')).cpu;
  }

  async sample(disks: readonly DiskPath[]): Promise<HostMetrics> {
    const pendingDisks = readDisks(disks);
    const [stat, loadavg, meminfo, netDev, uptime] = ['stat', 'loadavg', 'meminfo', 'net/dev', 'uptime'].map((f) => this.read(f));
    const temperatureC = readHottestZone(this.thermalDir);
    const diskUsage = await pendingDisks;
    const { cpu, cpuCount } = parseProcStat(stat!);
    // Unprimed, the only interval there is runs since boot: an average, but not a wrong one.
    const cpuPercent = hostCpuPercent(this.previousCpu ?? { busy: 0, total: 0 }, cpu);
    this.previousCpu = cpu;
    const net = parseNetDev(netDev!);
    return {
      cpuPercent,
      cpuCount,
      ...parseLoadavg(loadavg!),
      ...parseMeminfo(meminfo!),
      disks: diskUsage,
      ...(temperatureC !== undefined ? { temperatureC } : {}),
      netRxBytes: net.rxBytes,
      netTxBytes: net.txBytes,
      uptimeSeconds: parseUptime(uptime!),
    };
  }

  private read(file: string): string {
    return readKernelFile(join(this.procDir, file));
  }
}
