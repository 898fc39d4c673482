import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuPercentOfMachine, hostCpuPercent } from '../../agent/telemetry/metrics/cpu.js';
import { diskUsageOf } from '../../agent/telemetry/metrics/disks.js';
import { HostSampler } from '../../agent/telemetry/metrics/host.js';
import { parseLoadavg, parseMeminfo, parseNetDev, parseProcStat, parseUptime } from '../../agent/telemetry/metrics/procfs.js';
import { hottest, parseZoneTemperature, readHottestZone } from '../../agent/telemetry/metrics/thermal.js';
import { HostMetrics, validate } from '../../shared/index.js';

// A 4-core Raspberry Pi 4 (kernel 6.1), trimmed: the parsers must skip lines they do not use.
const PROC_STAT = `cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175 0
cpu0 1393280 32966 572056 13366824 4578 0 10112 0 0 0
cpu1 1335088 15860 493600 11792248 4039 0 4907 0 0 0
cpu2 6052929 209474 1489849 10476044 3722 0 6004 0 175 0
cpu3 1350855 32395 529213 11193365 4343 0 4170 0 0 0
intr 114930548 1 0 0 0 0 0 0 0 0
ctxt 1990473061
btime 1062191376
processes 2915
procs_running 1
procs_blocked 0
softirq 183433 0 21755 12 39 1137 231 21459 2263
`;

const MEMINFO = `MemTotal:        3884328 kB
MemFree:          214636 kB
MemAvailable:    2695104 kB
Buffers:          170744 kB
Cached:          2255332 kB
SwapCached:            0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`;

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9875655   72310    0    0    0     0          0         0  9875655   72310    0    0    0     0       0          0
  eth0: 1804458906 1500320    0   11    0     0          0      1021 253126210  800140    0    0    0     0       0          0
 wlan0:    1000      10    0    0    0     0          0         0      500       5    0    0    0     0       0          0
docker0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
`;

describe('/proc parsers', () => {
  it('reads the aggregate CPU ticks and counts the CPUs in /proc/stat', () => {
    const { cpu, cpuCount } = parseProcStat(PROC_STAT);
    expect(cpuCount).toBe(4);
    // user+nice+system+irq+softirq+steal busy; idle and iowait not; guest (175) already in user.
    expect(cpu.busy).toBe(10132153 + 290696 + 3084719 + 25195);
    expect(cpu.total).toBe(cpu.busy + 46828483 + 16683);
  });

  it('rejects a /proc/stat without the aggregate line', () => {
    expect(() => parseProcStat('cpu0 1 2 3 4\n')).toThrow(/no aggregate cpu line/);
  });

  it('reads the three load averages', () => {
    expect(parseLoadavg('0.21 0.97 1.78 2/345 6789\n')).toEqual({ load1: 0.21, load5: 0.97, load15: 1.78 });
    expect(() => parseLoadavg('')).toThrow(/loadavg/);
  });

  it('reads total and available memory in bytes; used is what is not available', () => {
    expect(parseMeminfo(MEMINFO)).toEqual({
      memTotalBytes: 3884328 * 1024,
      memAvailableBytes: 2695104 * 1024,
      memUsedBytes: (3884328 - 2695104) * 1024,
    });
  });

  it('approximates MemAvailable on kernels before 3.14 as free + buffers + cached', () => {
    const old = MEMINFO.replace(/^MemAvailable:.*\n/m, '');
    expect(parseMeminfo(old).memAvailableBytes).toBe((214636 + 170744 + 2255332) * 1024);
  });

  it('sums received and sent bytes over every interface but loopback', () => {
    expect(parseNetDev(NET_DEV)).toEqual({ rxBytes: 1804458906 + 1000, txBytes: 253126210 + 500 });
  });

  it('reads a container netns with only loopback and eth0 (no space after the colon)', () => {
    const text = 'Inter-|\n face |\n    lo:0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n  eth0:946 11 0 0 0 0 0 0 120 2 0 0 0 0 0 0\n';
    expect(parseNetDev(text)).toEqual({ rxBytes: 946, txBytes: 120 });
  });

  it('reads seconds since boot from /proc/uptime', () => {
    expect(parseUptime('9263.45 17812.23\n')).toBe(9263.45);
    expect(() => parseUptime('x')).toThrow(/uptime/);
  });
});

describe('CPU percentages', () => {
  it('is busy over total ticks between two /proc/stat readings, for the whole machine', () => {
    expect(hostCpuPercent({ busy: 1000, total: 4000 }, { busy: 1100, total: 4400 })).toBe(25);
    expect(hostCpuPercent({ busy: 0, total: 0 }, { busy: 400, total: 400 })).toBe(100);
  });

  it('reads 0, not NaN or a negative, when no tick passed or the counters went back', () => {
    expect(hostCpuPercent({ busy: 10, total: 20 }, { busy: 10, total: 20 })).toBe(0);
    expect(hostCpuPercent({ busy: 10, total: 20 }, { busy: 5, total: 30 })).toBe(0);
  });

  it('divides CPU time by wall time and the CPU count: one busy core of four is 25%', () => {
    expect(cpuPercentOfMachine(1e9, 1e9, 4)).toBe(25);
    expect(cpuPercentOfMachine(2e9, 1e9, 2)).toBe(100);
    expect(cpuPercentOfMachine(1e9 / 3, 1e9, 1)).toBe(33.33);
  });

  it('clamps jitter above 100 and ignores empty or backward intervals', () => {
    expect(cpuPercentOfMachine(1.01e9, 1e9, 1)).toBe(100);
    expect(cpuPercentOfMachine(5, 0, 1)).toBe(0);
    expect(cpuPercentOfMachine(-5, 10, 1)).toBe(0);
  });
});

describe('thermal zones', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reads millidegrees and ignores impossible readings', () => {
    expect(parseZoneTemperature('48312\n')).toBeCloseTo(48.312);
    expect(parseZoneTemperature('-273000')).toBeUndefined();
    expect(parseZoneTemperature('255000')).toBeUndefined();
    expect(parseZoneTemperature('')).toBeUndefined();
    expect(hottest([41.2, undefined, 55.55, 38])).toBe(55.6);
    expect(hottest([undefined])).toBeUndefined();
  });

  it('reports the hottest zone of a /sys/class/thermal tree, skipping unreadable zones', async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-thermal-'));
    for (const [zone, temp] of [
      ['thermal_zone0', '47750'],
      ['thermal_zone1', '61000'],
      ['thermal_zone2', undefined],
    ] as const) {
      await mkdir(join(dir, zone));
      if (temp !== undefined) await writeFile(join(dir, zone, 'temp'), `${temp}\n`);
    }
    await mkdir(join(dir, 'cooling_device0'));
    expect(readHottestZone(dir)).toBe(61);
  });

  it('is absent where /sys exposes no zone', () => {
    expect(readHottestZone('/nonexistent/thermal')).toBeUndefined();
  });
});

describe('disk usage', () => {
  it('counts as df does: used from free blocks, free from blocks available to users', () => {
    expect(diskUsageOf({ name: 'root', path: '/' }, { bsize: 4096, blocks: 1000, bfree: 300, bavail: 250 })).toEqual({
      name: 'root',
      path: '/',
      usedBytes: 700 * 4096,
      freeBytes: 250 * 4096,
      totalBytes: 1000 * 4096,
    });
  });
});

describe('HostSampler over a fixture /proc', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('builds a schema-valid sample, with CPU % between the primed and the current reading', async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-proc-'));
    await mkdir(join(dir, 'proc/net'), { recursive: true });
    await mkdir(join(dir, 'thermal/thermal_zone0'), { recursive: true });
    const write = (file: string, text: string) => writeFile(join(dir!, file), text);
    await Promise.all([
      write('proc/stat', 'cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1\ncpu1 1\n'),
      write('proc/loadavg', '0.50 0.40 0.30 1/100 42\n'),
      write('proc/meminfo', MEMINFO),
      write('proc/net/dev', NET_DEV),
      write('proc/uptime', '120.5 200.1\n'),
      write('thermal/thermal_zone0/temp', '52000\n'),
    ]);
    const sampler = new HostSampler({ procDir: join(dir, 'proc'), thermalDir: join(dir, 'thermal') });
    sampler.prime();
    // 1000 more ticks, 500 of them busy: 50%.
    await write('proc/stat', 'cpu  400 0 300 1300 0 0 0 0 0 0\ncpu0 1\ncpu1 1\n');
    const host = await sampler.sample([
      { name: 'root', path: '/' },
      { name: 'docker', path: '/nonexistent/docker' },
    ]);
    expect(validate(HostMetrics, host).ok).toBe(true);
    expect(host).toMatchObject({ cpuPercent: 50, cpuCount: 2, load1: 0.5, temperatureC: 52, uptimeSeconds: 120.5 });
    expect(host.netRxBytes).toBe(1804458906 + 1000);
    // An unreadable data root is left out rather than failing the sample.
    expect(host.disks.map((d) => d.name)).toEqual(['root']);
  });
});
