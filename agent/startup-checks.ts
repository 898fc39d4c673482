/**
 * What must hold before an agent starts, checked before it writes anything,
 * each failure one line naming the fix: the Docker Engine's socket is there
 * and this user may use it, and the data dir can be written, with room to
 * write in. `flotilla agent` and `flotilla agent register` exit non-zero on
 * them (a device that cannot run containers or keep state is not half set up
 * and left running).
 *
 * Only the start is judged here. An engine that goes away later is an
 * outage the agent rides out (reconcile/reconciler.ts, health/engine-outages.ts).
 * An engine whose socket is there but does not answer at start is treated
 * the same way: dockerd may still be coming up, and it is reported to the hub
 * as the device's runtime error. Only a socket that is not there at all, or
 * not this user's to use, is a set-up mistake no wait will fix.
 */
import { accessSync, constants, mkdirSync, rmSync, statfsSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { engineEndpoint } from './runtime/engine-endpoint.js';

/** A start-up failure whose message is the whole story: the CLI prints it as the one line it is. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export function isStartupError(err: unknown): err is StartupError {
  return err instanceof StartupError;
}

/**
 * Free space the data dir needs at start: a first start writes about 100 KiB
 * (agent.db and outbox.db with their WAL and shared-memory files, the log
 * ledger). Under this SQLite fails half-way, and says only "disk I/O error".
 */
export const MIN_FREE_BYTES = 1024 * 1024;

/** The engine's unix socket where the agent will look for it (engine-endpoint.ts); undefined for an engine over TCP. */
export function engineSocketPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return engineEndpoint(env).socketPath;
}

function whoAmI(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'this user');
  }
}

/** The socket exists, is a socket, and this process may connect to it (connect(2) needs write permission). */
export function checkEngineSocket(env: NodeJS.ProcessEnv = process.env): void {
  const socket = engineSocketPath(env);
  if (socket === undefined) return;
  const pointAt = 'or point DOCKER_HOST at its socket (DOCKER_HOST=unix:///path/to/docker.sock)';
  let isSocket: boolean;
  try {
    isSocket = statSync(socket).isSocket();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new StartupError(
        `no Docker Engine at ${socket} (no such socket): install one (apt-get install docker.io), start it (systemctl start docker), ${pointAt}`,
      );
    }
    if (code !== 'EACCES') throw err;
    // A directory on the way this user may not enter: the same fix as the socket's own permission.
    isSocket = true;
  }
  if (!isSocket) throw new StartupError(`${socket} is not a socket, so no Docker Engine listens there: start the engine, ${pointAt}`);
  try {
    accessSync(socket, constants.R_OK | constants.W_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    const user = whoAmI();
    throw new StartupError(
      `user ${user} may not use the Docker Engine's socket ${socket}: run the agent as root, or add ${user} to the docker group (usermod -aG docker ${user}) and start it again`,
    );
  }
}

/**
 * The agent's data dir exists (made 0700 if missing) and takes a small write:
 * the files it keeps there (agent.db, outbox.db, log-ledger.json) would fail
 * half-way otherwise. What the check made is removed again if it fails.
 */
export function checkDataDir(dataDir: string): void {
  const dir = resolve(dataDir);
  let made: string | undefined;
  const probe = join(dir, `.flotilla-write-check.${process.pid}`);
  try {
    made = mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK | constants.X_OK);
    // A page's worth: a full file system takes an empty file but not this.
    writeFileSync(probe, Buffer.alloc(4096), { mode: 0o600 });
    unlinkSync(probe);
    if (freeBytes(dir) < MIN_FREE_BYTES) throw Object.assign(new Error('almost no space left'), { code: 'ENOSPC' });
  } catch (err) {
    try {
      rmSync(probe, { force: true });
      if (made !== undefined) rmSync(made, { recursive: true, force: true });
    } catch {
      // A dir this user may not even enter holds no probe of ours.
    }
    throw dataDirError(err, dir) ?? err;
  }
}

/** What this user may still write under `dir` (Infinity when the file system cannot say). */
function freeBytes(dir: string): number {
  try {
    const fs = statfsSync(dir);
    return fs.bavail * fs.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * The one-line error for a write into the data dir that failed for a reason
 * the operator must fix (no room, no permission, a read-only file system),
 * whatever wrote it (the check, SQLite, a JSON file); undefined for any other error.
 */
export function dataDirError(err: unknown, dataDir: string): StartupError | undefined {
  const dir = resolve(dataDir);
  const code = (err as { code?: unknown } | null)?.code;
  // SQLite reports a write into a full file system through its WAL's shared memory as an I/O error.
  const sqliteOutOfSpace = typeof code === 'string' && code.startsWith('SQLITE_IOERR') && freeBytes(dir) < MIN_FREE_BYTES;
  if (code === 'ENOSPC' || code === 'SQLITE_FULL' || code === 'EDQUOT' || sqliteOutOfSpace) {
    return new StartupError(
      `no space left for the agent's state in ${dir}: free some on that file system (df -h ${dir}), or choose another data dir with --data-dir`,
    );
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY') {
    const user = whoAmI();
    return new StartupError(
      `user ${user} cannot write the agent's data dir ${dir}: run the agent as the dir's owner or root, give it to ${user} (mkdir -p ${dir} && chown -R ${user} ${dir}), or choose another with --data-dir`,
    );
  }
  if (code === 'ENOTDIR' || code === 'EEXIST') {
    return new StartupError(`the agent's data dir ${dir} cannot be a directory (a file is in the way): choose another with --data-dir`);
  }
  if (code === 'EROFS') {
    return new StartupError(`the agent's data dir ${dir} is on a read-only file system: choose a writable one with --data-dir`);
  }
  return undefined;
}
