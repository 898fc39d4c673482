/**
 * The log ledger (log-cursor.ts) kept where a killed agent cannot lose it and
 * the SD card is not written: a file in a directory in RAM (tmpfs, by default
 * under /dev/shm), saved before every log batch goes out. The data dir gets a
 * copy only at a clean stop, for the agent after a reboot.
 *
 * No periodic copy to the data dir: a copy older than the last batch handed
 * cannot say which later lines the hub has, so resuming from it would send
 * them again under new seqs (duplicates); it could only be ignored. The data
 * dir's copy is therefore kept only while it is exact: written (fsynced) at a
 * clean stop, and removed (the removal fsynced) at the next agent's first
 * save, before any batch of its own goes out.
 *
 * Invariant: while the data dir's copy exists, it is at least as new as the
 * last batch handed, so `load` prefers it; the RAM copy is read only when the
 * data dir has none.
 *
 * What each way of stopping means for the hub's copy of the logs:
 * - kill -9, an OOM kill, a crash, systemd's restart: the RAM copy is in the
 *   kernel; the next agent sends the unsettled batches again under their
 *   seqs and resumes just after the last line recorded: every line once.
 * - a clean stop (SIGTERM; a reboot stops the agent first): the data dir's
 *   copy is exact: every line once, across the reboot too.
 * - a power cut or a kernel crash: RAM is wiped and the data dir holds no
 *   copy, so the next agent starts as a first one does and follows running
 *   containers from its own start: lines not delivered before the cut, and
 *   those printed between boot and the agent's start, are a gap; never a
 *   duplicate.
 *
 * A RAM directory that cannot be used (cannot be made, not this user's,
 * full) is given up for the agent's life: the ledger is then saved in the
 * data dir before each batch (cursor-file.ts), exact but at the SD card's
 * cost, and the agent says so once.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmdirSync,
  rmSync,
  statfsSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { fsyncDir } from '../../fsync-dir.js';
import { CursorFile, type LedgerStore, readLedgerFile } from './cursor-file.js';
import type { LedgerJson } from './log-cursor.js';

export const LEDGER_FILE_NAME = 'log-ledger.json';

/** statfs(2) f_type of the file systems whose files live in RAM. */
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/**
 * /dev/shm (tmpfs on Debian and Raspberry Pi OS; systemd's PrivateDevices
 * binds the host's) under a name made from the data dir and device id, so
 * agents sharing a host never share a ledger; undefined without /dev/shm.
 */
export function defaultLedgerDir(dataDir: string, deviceId: string, shm = '/dev/shm'): string | undefined {
  if (!existsSync(shm)) return undefined;
  const key = createHash('sha256')
    .update(`${resolve(dataDir)}\n${deviceId}`)
    .digest('hex')
    .slice(0, 16);
  return join(shm, `flotilla-agent-${key}`);
}

export function isInRam(dir: string): boolean {
  const { type } = statfsSync(dir);
  return type === TMPFS_MAGIC || type === RAMFS_MAGIC;
}

export interface LedgerFilesOptions {
  /** The data dir's copy, `<dataDir>/log-ledger.json`. */
  diskPath: string;
  /** A directory in RAM that outlives the agent process but not a reboot. */
  ramDir: string;
  /** Remove `ramDir` itself at a clean stop (a directory of the agent's own naming, not one set up for it). */
  removeRamDir?: boolean;
  logger: Logger;
}

export class LedgerFiles implements LedgerStore {
  private readonly ramPath: string;
  private readonly disk: CursorFile;
  private readonly log: Logger;
  private ramUsable = true;
  private ramChecked = false;
  private diskCopyRemoved = false;

  constructor(private readonly options: LedgerFilesOptions) {
    this.ramPath = join(options.ramDir, LEDGER_FILE_NAME);
    this.disk = new CursorFile(options.diskPath);
    this.log = options.logger;
  }

  /** Where saves go now: RAM, or the data dir once RAM was given up. */
  get savingTo(): 'ram' | 'data dir' {
    return this.ramUsable ? 'ram' : 'data dir';
  }

  load(): LedgerJson | undefined {
    // A data dir copy that exists but cannot be read (torn by a power cut) leaves the ledger unknown: the RAM copy may be older.
    if (existsSync(this.options.diskPath)) return readLedgerFile(this.options.diskPath);
    return privateDir(this.options.ramDir) ? readLedgerFile(this.ramPath) : undefined;
  }

  save(json: LedgerJson): void {
    if (this.ramUsable) {
      try {
        this.writeRam(json);
        this.removeDiskCopy();
        return;
      } catch (err) {
        this.ramUsable = false;
        this.log.warn(
          { err: (err as Error).message, dir: this.options.ramDir },
          'cannot keep the log ledger in RAM: it is saved in the data dir before each log batch instead',
        );
      }
    }
    this.disk.save(json);
  }

  persist(json: LedgerJson): void {
    try {
      writeDurably(this.options.diskPath, json);
    } catch (err) {
      // The RAM copy, exact too, still serves an agent started before the next reboot.
      if (this.ramUsable) this.save(json);
      throw err;
    }
    this.diskCopyRemoved = false;
    // The data dir's copy is the newer from here on: load never reads the RAM copy while it exists, so RAM is freed.
    try {
      rmSync(this.ramPath, { force: true });
      if (this.options.removeRamDir) rmdirSync(this.options.ramDir);
    } catch {
      // Not a directory, not empty or already gone: nothing there is read while the data dir's copy exists.
    }
  }

  private writeRam(json: LedgerJson): void {
    if (!this.ramChecked) this.checkRamDir();
    try {
      this.replaceRamCopy(json);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // The directory was removed under the agent (a clean-up of /dev/shm): made again, it holds the whole ledger at once.
      this.checkRamDir();
      this.replaceRamCopy(json);
    }
  }

  /** Replaced by a rename: a save cut short by kill -9 leaves the previous copy whole. */
  private replaceRamCopy(json: LedgerJson): void {
    const tmp = `${this.ramPath}.tmp`;
    writeFileSync(tmp, JSON.stringify(json), { mode: 0o600 });
    renameSync(tmp, this.ramPath);
  }

  private checkRamDir(): void {
    const dir = this.options.ramDir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || !ownedByThisUser(st.uid)) throw new Error(`${dir} is not a directory of this user's`);
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
    if (!isInRam(dir))
      this.log.warn({ dir }, 'the log ledger directory is not in RAM: saving the ledger there writes the disk before each log batch');
    this.ramChecked = true;
  }

  /** Once per agent, before its first batch: from here on the data dir's copy would be stale. */
  private removeDiskCopy(): void {
    if (this.diskCopyRemoved) return;
    const path = this.options.diskPath;
    if (existsSync(path)) {
      rmSync(path);
      fsyncDir(dirname(path));
    }
    this.diskCopyRemoved = true;
  }
}

/**
 * A directory only this user can write to. /dev/shm is world-writable: a
 * ledger in a directory someone else made, or can write to, could be forged.
 */
function privateDir(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && ownedByThisUser(st.uid) && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function ownedByThisUser(uid: number): boolean {
  const self = process.getuid?.();
  return self === undefined || uid === self;
}

/** Replaces `path` with the ledger so that it survives a power cut once this returns. */
function writeDurably(path: string, json: LedgerJson): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(json));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}
