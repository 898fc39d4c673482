/**
 * Free disk space, and the pure check an update runs before it pulls: the
 * image's download size plus a reserve must fit in what is free under
 * Docker's data root, or the update fails with a message an operator can
 * act on instead of filling the SD card.
 */
import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { formatBytes } from '../../shared/schemas/units.js';

export { formatBytes };

export interface FreeSpace {
  /** Bytes available to an unprivileged writer (statfs `bavail × bsize`, as `df` shows under "Avail"). */
  bytes: number;
  /**
   * The path actually measured: `path` itself, or its nearest existing
   * parent when `path` does not exist here — e.g. an agent in a container
   * without Docker's data root mounted measures its own "/" instead.
   */
  measuredAt: string;
}

export async function freeBytesWithSource(path: string): Promise<FreeSpace> {
  let current = resolve(path);
  for (;;) {
    try {
      const stats = await statfs(current);
      return { bytes: stats.bavail * stats.bsize, measuredAt: current };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const parent = dirname(current);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === current) throw err;
      current = parent;
    }
  }
}

export async function freeBytes(path: string): Promise<number> {
  return (await freeBytesWithSource(path)).bytes;
}

export interface DiskCheckInput {
  /** Bytes the image needs (its download size). */
  needed: number;
  /** Bytes that must stay free afterwards. */
  reserve: number;
  /** Bytes free now. */
  free: number;
  /** Where `free` was measured; named in the message. */
  path?: string;
}

export type DiskCheckResult = { ok: true } | { ok: false; shortBy: number; message: string };

/** Passes when `needed + reserve <= free`. */
export function diskCheck(input: DiskCheckInput): DiskCheckResult {
  const { needed, reserve, free, path } = input;
  const shortBy = needed + reserve - free;
  if (shortBy <= 0) return { ok: true };
  const where = path === undefined ? '' : ` under ${path}`;
  return {
    ok: false,
    shortBy,
    message:
      `not enough disk: the image needs ${formatBytes(needed)} plus a reserve of ${formatBytes(reserve)}, ` +
      `but only ${formatBytes(free)} are free${where} (short by ${formatBytes(shortBy)})`,
  };
}
