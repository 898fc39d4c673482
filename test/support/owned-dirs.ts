/**
 * Temp dirs for the private test servers that say which process made them, so a dir left behind by
 * a process that died without cleaning up (SIGKILL, a crashed test worker) is removed by the next
 * process that makes one with the same prefix. A dir without an owner file is never touched: it is
 * not one of these (the PostgreSQL template, a dir being made), or its owner is unknown.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OWNER_FILE = '.owner-pid';

/** A new dir `<tmpdir>/<prefix>XXXXXX` owned by this process, after removing those whose owner is gone. */
export function ownedTempDir(prefix: string): string {
  removeOrphans(prefix);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

function removeOrphans(prefix: string): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(prefix)) continue;
    const dir = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
    } catch {
      continue;
    }
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) rmSync(dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
