import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CgroupReader,
  controllerDir,
  parseKeyedValues,
  parseLimit,
  parseMountinfo,
  parseProcCgroup,
  parseV1BlkioBytes,
  parseV2IoStat,
  workingSetBytes,
} from '../../agent/telemetry/metrics/cgroup.js';

const ID = '62f832f7313730f97db636937d7599ca754aaed03d98838377094110335e7e53';

// Debian 11 / this project's CI machines: cgroup v1 controllers plus an empty v2 tree (hybrid).
const MOUNTINFO_HYBRID = `25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw
31 25 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
`;

const PROC_CGROUP_V1 = `12:pids:/docker/${ID}
9:blkio:/docker/${ID}
4:memory:/docker/${ID}
2:cpu,cpuacct:/docker/${ID}
1:name=systemd:/docker/${ID}
0::/docker/${ID}
`;

// Debian 12 / Raspberry Pi OS bookworm: pure v2, Docker's systemd cgroup driver.
const MOUNTINFO_V2 = `30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n`;
const PROC_CGROUP_V2 = `0::/system.slice/docker-${ID}.scope\n`;

describe('finding a container cgroup', () => {
  it('maps each v1 controller to its hierarchy, co-mounted ones included', () => {
    const mounts = parseMountinfo(MOUNTINFO_HYBRID);
    expect(mounts.v1.get('cpuacct')?.mountPoint).toBe('/sys/fs/cgroup/cpu,cpuacct');
    expect(mounts.v1.get('name=systemd')?.mountPoint).toBe('/sys/fs/cgroup/systemd');
    expect(mounts.v2?.mountPoint).toBe('/sys/fs/cgroup/unified');
    const membership = parseProcCgroup(PROC_CGROUP_V1);
    expect(controllerDir(mounts, membership, 'cpuacct')).toBe(`/sys/fs/cgroup/cpu,cpuacct/docker/${ID}`);
    expect(controllerDir(mounts, membership, 'memory')).toBe(`/sys/fs/cgroup/memory/docker/${ID}`);
    // Hybrid: the v2 tree has no controllers, so it is never used for them.
    expect(controllerDir(mounts, membership, 'io')).toBeUndefined();
  });

  it('uses the unified hierarchy for every controller on a v2 host', () => {
    const mounts = parseMountinfo(MOUNTINFO_V2);
    const membership = parseProcCgroup(PROC_CGROUP_V2);
    expect(controllerDir(mounts, membership, 'memory')).toBe(`/sys/fs/cgroup/system.slice/docker-${ID}.scope`);
    expect(controllerDir(mounts, membership, 'pids')).toBe(`/sys/fs/cgroup/system.slice/docker-${ID}.scope`);
  });

  it('strips the mount root inside a cgroup namespace and unescapes mount paths', () => {
    const mounts = parseMountinfo('30 24 0:26 /kubepods /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n');
    expect(controllerDir(mounts, parseProcCgroup('0::/kubepods/pod1/c1\n'), 'memory')).toBe('/sys/fs/my cgroup/pod1/c1');
  });
});

describe('cgroup file parsers', () => {
  it('sums v1 blkio bytes by direction over devices, skipping the Total line', () => {
    const text = '8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:16 Read 100\n8:16 Write 0\nTotal 12388\n';
    expect(parseV1BlkioBytes(text)).toEqual({ readBytes: 4196, writeBytes: 8192 });
    expect(parseV1BlkioBytes('Total 0\n')).toEqual({ readBytes: 0, writeBytes: 0 });
  });

  it('sums v2 io.stat bytes over devices', () => {
    const text = '8:0 rbytes=1048576 wbytes=4096 rios=10 wios=1 dbytes=0 dios=0\n179:0 rbytes=10 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n';
    expect(parseV2IoStat(text)).toEqual({ readBytes: 1048586, writeBytes: 4116 });
  });

  it('reads "max" as no limit', () => {
    expect(parseLimit('max\n')).toBeUndefined();
    expect(parseLimit('67108864\n')).toBe(67108864);
  });

  it('subtracts the inactive page cache from usage, as docker stats does', () => {
    const v1 = parseKeyedValues('cache 1048576\ninactive_file 600\ntotal_inactive_file 675840\n');
    expect(workingSetBytes(1585152, v1, true)).toBe(1585152 - 675840);
    const v2 = parseKeyedValues('anon 4096\ninactive_file 1000\n');
    expect(workingSetBytes(5000, v2, false)).toBe(4000);
    // Never negative.
    expect(workingSetBytes(10, v2, false)).toBe(10);
  });
});

describe('CgroupReader over fixture trees', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** Writes the files under a temp dir, "@" in their text standing for that dir; returns the dir. */
  async function tree(files: Record<string, string>): Promise<string> {
    const root = await mkdtemp(join(tmpdir(), 'flotilla-cgroup-'));
    dir = root;
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), text.replaceAll('@', root));
    }
    return root;
  }

  const NET = 'Inter-|\n face |\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n  eth0: 946 11 0 0 0 0 0 0 120 2 0 0 0 0 0 0\n';

  it('reads a v1 container: cpuacct ns, memory less inactive file, limit, blkio, pids, netns bytes', async () => {
    const root = await tree({
      'proc/self/mountinfo': MOUNTINFO_HYBRID.replaceAll('/sys/fs/cgroup', '@/cg'),
      'proc/524/cgroup': PROC_CGROUP_V1,
      'proc/524/net/dev': NET,
      [`cg/cpu,cpuacct/docker/${ID}/cpuacct.usage`]: '52250989258\n',
      [`cg/memory/docker/${ID}/memory.usage_in_bytes`]: '41000000\n',
      [`cg/memory/docker/${ID}/memory.stat`]: 'cache 1\ntotal_inactive_file 1000000\n',
      [`cg/memory/docker/${ID}/memory.limit_in_bytes`]: '67108864\n',
      [`cg/blkio/docker/${ID}/blkio.throttle.io_service_bytes_recursive`]: '8:0 Read 4096\n8:0 Write 512\nTotal 4608\n',
      [`cg/pids/docker/${ID}/pids.current`]: '3\n',
    });
    const counters = await new CgroupReader({ procDir: join(root, 'proc') }).read({ id: ID, pid: 524, networkMode: 'bridge' });
    expect(counters).toMatchObject({
      cpuNs: 52250989258,
      memBytes: 40000000,
      memLimitBytes: 67108864,
      netRxBytes: 946,
      netTxBytes: 120,
      blkReadBytes: 4096,
      blkWriteBytes: 512,
      pids: 3,
    });
    expect(counters?.readAtMs).toBeGreaterThan(Date.now() - 60_000);
  });

  it('reads a v2 container, and reports no network under host networking', async () => {
    const scope = `cg/system.slice/docker-${ID}.scope`;
    const root = await tree({
      'proc/self/mountinfo': MOUNTINFO_V2.replace('/sys/fs/cgroup', '@/cg'),
      'proc/77/cgroup': PROC_CGROUP_V2,
      [`${scope}/cpu.stat`]: 'usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n',
      [`${scope}/memory.current`]: '9000\n',
      [`${scope}/memory.stat`]: 'anon 8000\ninactive_file 1000\n',
      [`${scope}/memory.max`]: 'max\n',
      [`${scope}/io.stat`]: '8:0 rbytes=10 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n',
      [`${scope}/pids.current`]: '2\n',
    });
    const counters = await new CgroupReader({ procDir: join(root, 'proc') }).read({ id: ID, pid: 77, networkMode: 'host' });
    expect(counters).toMatchObject({
      cpuNs: 1.5e9,
      memBytes: 8000,
      netRxBytes: 0,
      netTxBytes: 0,
      blkReadBytes: 10,
      blkWriteBytes: 20,
      pids: 2,
    });
    expect(counters).not.toHaveProperty('memLimitBytes');
  });

  it("refuses a pid whose cgroup is not the container's (another pid namespace, or a reused pid)", async () => {
    const root = await tree({
      'proc/self/mountinfo': MOUNTINFO_V2.replace('/sys/fs/cgroup', '@/cg'),
      'proc/1/cgroup': '0::/init.scope\n',
      ...Object.fromEntries(['cpu.stat', 'memory.current', 'memory.stat', 'memory.max'].map((f) => [`cg/init.scope/${f}`, '1\n'])),
    });
    expect(await new CgroupReader({ procDir: join(root, 'proc') }).read({ id: ID, pid: 1 })).toBeUndefined();
  });

  it('answers undefined, not an error, when the process is gone or procfs is not there', async () => {
    const root = await tree({ 'proc/self/mountinfo': MOUNTINFO_V2 });
    expect(await new CgroupReader({ procDir: join(root, 'proc') }).read({ id: ID, pid: 999999 })).toBeUndefined();
    expect(await new CgroupReader({ procDir: '/nonexistent' }).read({ id: ID, pid: 1 })).toBeUndefined();
  });
});
