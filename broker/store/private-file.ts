/**
 * Creates a file only its owner may read, holding `content` whole from the
 * moment its name exists: written to a temp file opened 0600, synced, then
 * linked into place. link(2) fails if the name is taken, so a concurrent
 * start (or an existing key) is never overwritten, and a crash mid-write
 * leaves no short file behind under the real name. Used for the hub's keys.
 */
import { closeSync, fsyncSync, linkSync, openSync, unlinkSync, writeSync } from 'node:fs';

/** True if this call created `path`; false if it already existed. */
export function createPrivateFile(path: string, content: string): boolean {
  const temp = `${path}.${process.pid}.${Date.now().toString(36)}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(temp);
  }
}
