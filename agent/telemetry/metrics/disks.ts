/**
 * Disk usage of `/` (`root`) and of Docker's data root (`docker`), by one
 * statfs(2) each: no process spawned, no directory walked.
 *
 * Both are reported whenever they can be read, even when Docker's data root
 * lives on the root filesystem (the usual case on a device): they answer two
 * different questions — "is the OS about to fill up?" and "is there room for
 * the next image?" — and a dashboard should not have to guess which entry
 * stands for which. Equal totals mean one filesystem; do not add them up.
 */
import type { StatsFs } from 'node:fs';
import { statfs } from 'node:fs/promises';
import type { DiskUsage } from '../../../shared/index.js';

export interface DiskPath {
  name: string;
  path: string;
}

/**
 * As df(1) counts: used = blocks − free blocks, free = blocks available to an
 * unprivileged user (the root-reserved blocks are neither: used + free can be
 * less than total).
 */
export function diskUsageOf(disk: DiskPath, stats: Pick<StatsFs, 'bsize' | 'blocks' | 'bfree' | 'bavail'>): DiskUsage {
  return {
    name: disk.name,
    path: disk.path,
    usedBytes: (stats.blocks - stats.bfree) * stats.bsize,
    freeBytes: stats.bavail * stats.bsize,
    totalBytes: stats.blocks * stats.bsize,
  };
}

/** The disks that could be read; one that cannot (no such path, no permission) is left out. */
export async function readDisks(disks: readonly DiskPath[]): Promise<DiskUsage[]> {
  const read = await Promise.all(
    disks.map((disk) =>
      statfs(disk.path).then(
        (stats) => diskUsageOf(disk, stats),
        () => undefined,
      ),
    ),
  );
  return read.filter((d): d is DiskUsage => d !== undefined);
}
