/**
 * Files only their owner may read: the hub's signing, secrets and admin keys,
 * the agent's `agent.json` with the device secret.
 *
 * Invariants: the file is never readable by anyone else, not even for a
 * moment, and it holds its content whole from the moment its name exists.
 * The content goes to a temp file in the same directory, created 0600 by
 * open(2) itself (not chmod-ed afterwards), synced, then put in place in one
 * step, and the directory is synced so the name survives a power cut (a
 * device's usual way to stop). A crash mid-write leaves no short file under
 * the real name.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, fsyncSync, linkSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface PrivateFileOptions {
  /** Replace a file already there (rename over it). Default false: an existing file is left alone. */
  replace?: boolean;
}

/**
 * Writes `content` to `path` (mode 0600, its directory made 0700 if missing).
 * True if the file was written; false if it already existed and `replace` is
 * off, in which case it is untouched: link(2) into place fails on a taken
 * name, so a concurrent start or an existing key is never overwritten.
 */
export function writePrivateFile(path: string, content: string, { replace = false }: PrivateFileOptions = {}): boolean {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    // The umask can only take bits away from 0600; this puts back a stripped owner bit.
    fchmodSync(fd, 0o600);
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  let written: boolean;
  try {
    if (replace) renameSync(temp, path);
    written = replace || placeWithoutReplacing(temp, path);
  } finally {
    if (existsSync(temp)) unlinkSync(temp);
  }
  if (written) syncDir(dir);
  return written;
}

function placeWithoutReplacing(temp: string, path: string): boolean {
  try {
    linkSync(temp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // File systems without hard links (FAT on an SD card): check, then rename.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    if (existsSync(path)) return false;
    renameSync(temp, path);
    return true;
  }
}

/** Not every platform can open a directory: best effort. */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort
  }
}
