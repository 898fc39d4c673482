/**
 * Container counters straight from the kernel: the cgroup files of the
 * container's main process and its network namespace's /proc/<pid>/net/dev.
 *
 * Why files and not the Engine's stats API: `docker stats --no-stream` and
 * `GET /containers/{id}/stats?stream=false` answer only at the engine's next
 * one-second collection tick (measured ~1 s per request on Docker 20.10, with
 * `one-shot=true` too), and the streaming variant makes dockerd collect and the
 * agent parse a JSON document per container every second whatever our
 * interval is. The files are what dockerd itself reads: ~7 small reads per
 * container per sample, answered by the kernel in microseconds. The Engine API
 * stays as the fallback (DockerRuntime.stats) for when these files cannot be
 * read — an agent in a container without the host's pid namespace or cgroupfs.
 *
 * Both cgroup v1 (Debian 10/11, this project's CI machines, Docker's
 * "cgroupfs" driver with /docker/<id>) and v2 (Debian 12 and Raspberry Pi OS
 * bookworm, "systemd" driver with docker-<id>.scope) are read. Which
 * hierarchy holds a controller comes from /proc/self/mountinfo: in a hybrid
 * setup the v1 mounts own the controllers and the v2 tree has none.
 *
 * Invariant: counters are returned only when the pid's cgroup path names the
 * container id. A pid from another pid namespace (or reused since inspect)
 * would otherwise silently yield some other process's numbers.
 */
import { join } from 'node:path';
import type { ContainerCounters } from '../../runtime/runtime.js';
import { readKernelFile } from './kernel-file.js';
import { parseNetDev } from './procfs.js';

export interface CgroupMount {
  mountPoint: string;
  /** The part of the hierarchy mounted there ("/" unless inside a cgroup namespace). */
  root: string;
}

export interface CgroupMounts {
  /** v1 hierarchies by controller ("memory", "cpuacct", "blkio", "pids", …). */
  v1: Map<string, CgroupMount>;
  v2?: CgroupMount;
}

/**
 * /proc/self/mountinfo: `36 25 0:32 / /sys/fs/cgroup/memory rw,relatime shared:15 - cgroup cgroup rw,memory`.
 * Fields after the "-" are fstype, source and super options; for cgroup v1 the
 * super options name the controllers of that hierarchy.
 */
export function parseMountinfo(text: string): CgroupMounts {
  const mounts: CgroupMounts = { v1: new Map() };
  for (const line of text.split('\n')) {
    const [before, after] = line.split(' - ');
    if (before === undefined || after === undefined) continue;
    const [, , , root, mountPoint] = before.split(' ');
    const [fstype, , superOptions = ''] = after.split(' ');
    if (root === undefined || mountPoint === undefined) continue;
    const mount = { mountPoint: unescapeMountPath(mountPoint), root: unescapeMountPath(root) };
    if (fstype === 'cgroup2') mounts.v2 ??= mount;
    else if (fstype === 'cgroup') {
      for (const option of superOptions.split(',')) if (!mounts.v1.has(option)) mounts.v1.set(option, mount);
    }
  }
  return mounts;
}

export interface CgroupMembership {
  v1: Map<string, string>;
  v2?: string;
}

/** /proc/<pid>/cgroup: `4:memory:/docker/<id>` per v1 hierarchy, `0::/system.slice/docker-<id>.scope` for v2. */
export function parseProcCgroup(text: string): CgroupMembership {
  const membership: CgroupMembership = { v1: new Map() };
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (line.slice(0, first) === '0' && controllers === '') membership.v2 = path;
    else for (const controller of controllers.split(',')) membership.v1.set(controller, path);
  }
  return membership;
}

/** The directory of a controller's files for this membership, or undefined when it is not mounted. */
export function controllerDir(mounts: CgroupMounts, membership: CgroupMembership, controller: string): string | undefined {
  const v1 = mounts.v1.get(controller);
  const v1Path = membership.v1.get(controller);
  if (v1 && v1Path !== undefined) return join(v1.mountPoint, relativeTo(v1.root, v1Path));
  // Not a v1 controller here, so it lives in the unified hierarchy (if that is mounted).
  if (!isV1(mounts) && mounts.v2 && membership.v2 !== undefined)
    return join(mounts.v2.mountPoint, relativeTo(mounts.v2.root, membership.v2));
  return undefined;
}

/** Whether memory (and so, in practice, every resource controller) is on v1: a hybrid host counts as v1, its v2 tree has no controllers. */
export function isV1(mounts: CgroupMounts): boolean {
  return mounts.v1.has('memory');
}

/** Flat keyed files (memory.stat, cpu.stat): `key value` per line. */
export function parseKeyedValues(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) values.set(key, Number(value));
  }
  return values;
}

export interface BlockBytes {
  readBytes: number;
  writeBytes: number;
}

/** v1 blkio.throttle.io_service_bytes_recursive: `8:0 Read 4096` … `Total 8192`, summed over devices. */
export function parseV1BlkioBytes(text: string): BlockBytes {
  let readBytes = 0;
  let writeBytes = 0;
  for (const line of text.split('\n')) {
    const [device, op, value] = line.trim().split(/\s+/);
    if (device === undefined || device === 'Total' || value === undefined) continue;
    if (op === 'Read') readBytes += Number(value) || 0;
    else if (op === 'Write') writeBytes += Number(value) || 0;
  }
  return { readBytes, writeBytes };
}

/** v2 io.stat: `8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0` per device. */
export function parseV2IoStat(text: string): BlockBytes {
  let readBytes = 0;
  let writeBytes = 0;
  for (const match of text.matchAll(/\b([rw])bytes=(\d+)/g)) {
    if (match[1] === 'r') readBytes += Number(match[2]);
    else writeBytes += Number(match[2]);
  }
  return { readBytes, writeBytes };
}

/** memory.max / memory.limit_in_bytes: "max" (v2) means no limit. */
export function parseLimit(text: string): number | undefined {
  const value = text.trim();
  if (value === 'max') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Usage less the inactive page cache, as `docker stats` computes it: file
 * pages the kernel can drop at any time are not memory the app holds.
 */
export function workingSetBytes(usage: number, stat: Map<string, number>, v1: boolean): number {
  const inactive = (v1 ? stat.get('total_inactive_file') : stat.get('inactive_file')) ?? 0;
  return inactive < usage ? usage - inactive : usage;
}

export interface CgroupTarget {
  id: string;
  pid: number;
  /** Under host networking /proc/<pid>/net/dev is the host's: the container's own traffic is not separable, reported as 0. */
  networkMode?: string;
}

/** Reads counters through the files; `undefined` means "not readable here", and the caller falls back to the engine. */
export class CgroupReader {
  private readonly procDir: string;
  /** Parsed once: cgroup mounts do not move while the agent runs. null: not readable here. */
  private mounts: CgroupMounts | null | undefined;

  constructor(options: { procDir?: string } = {}) {
    this.procDir = options.procDir ?? '/proc';
  }

  async read(target: CgroupTarget): Promise<ContainerCounters | undefined> {
    return this.readNow(target);
  }

  private readNow(target: CgroupTarget): ContainerCounters | undefined {
    if (this.mounts === undefined) {
      try {
        this.mounts = parseMountinfo(readKernelFile(join(this.procDir, 'self/mountinfo')));
      } catch {
        this.mounts = null;
      }
    }
    const mounts = this.mounts;
    if (!mounts || (mounts.v1.size === 0 && !mounts.v2)) return undefined;
    try {
      const membership = parseProcCgroup(readKernelFile(join(this.procDir, String(target.pid), 'cgroup')));
      const v1 = isV1(mounts);
      const dir = (controller: string) => {
        const found = controllerDir(mounts, membership, controller);
        if (found === undefined) throw new Error(`no ${controller} cgroup`);
        return found;
      };
      const memoryDir = dir('memory');
      if (!memoryDir.includes(target.id)) return undefined; // not this container's process (see the invariant above)
      const read = (d: string, file: string) => readKernelFile(join(d, file));
      // Block I/O and pids are optional: a kernel without the controller reports 0 rather than no sample.
      const optional = (d: () => string, file: string) => {
        try {
          return read(d(), file);
        } catch {
          return '';
        }
      };
      const cpu = v1 ? read(dir('cpuacct'), 'cpuacct.usage') : read(memoryDir, 'cpu.stat');
      const readAtMs = performance.timeOrigin + performance.now();
      const usage = read(memoryDir, v1 ? 'memory.usage_in_bytes' : 'memory.current');
      const memStat = read(memoryDir, 'memory.stat');
      const limit = read(memoryDir, v1 ? 'memory.limit_in_bytes' : 'memory.max');
      const blk = v1 ? optional(() => dir('blkio'), 'blkio.throttle.io_service_bytes_recursive') : optional(() => memoryDir, 'io.stat');
      const pids = optional(() => dir('pids'), 'pids.current');
      const netDev = target.networkMode === 'host' ? '' : read(join(this.procDir, String(target.pid)), 'net/dev');

      const cpuNs = v1 ? Number(cpu.trim()) : (parseKeyedValues(cpu).get('usage_usec') ?? Number.NaN) * 1000;
      if (!Number.isFinite(cpuNs)) return undefined;
      const blkBytes = v1 ? parseV1BlkioBytes(blk) : parseV2IoStat(blk);
      const net = parseNetDev(netDev);
      const memLimitBytes = parseLimit(limit);
      return {
        cpuNs,
        memBytes: workingSetBytes(Number(usage.trim()), parseKeyedValues(memStat), v1),
        ...(memLimitBytes !== undefined ? { memLimitBytes } : {}),
        netRxBytes: net.rxBytes,
        netTxBytes: net.txBytes,
        blkReadBytes: blkBytes.readBytes,
        blkWriteBytes: blkBytes.writeBytes,
        pids: Number(pids.trim()) || 0,
        readAtMs,
      };
    } catch {
      // The process exited, or this process may not read its files: the engine will answer instead.
      return undefined;
    }
  }
}

/** Where the hierarchy is mounted from a sub-tree (cgroup namespaces), paths are relative to that sub-tree. */
function relativeTo(root: string, path: string): string {
  if (root !== '/' && (path === root || path.startsWith(`${root}/`))) return path.slice(root.length) || '/';
  return path;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040…). */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
