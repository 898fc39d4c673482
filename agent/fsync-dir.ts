/**
 * Makes a directory's entries durable (a created, renamed or removed file
 * survives a power cut once this returns). Throws when it cannot: the
 * agent's callers rely on the entry being on disk before they go on.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
