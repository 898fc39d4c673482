/**
 * `npx flotilla server` and `npm start` run the CLI as `npm → sh -c → node`.
 * A SIGTERM to npm (what `kill %1` sends from a script, or a supervisor that
 * signals only the pid it started) ends npm and the shell but never reaches
 * node, which would live on as an orphan holding the hub's ports. So a
 * long-running command started by npm watches its launchers and closes, as
 * on SIGTERM, once they are gone. Started any other way (node directly, a
 * service manager, `nohup … &` then logging out) it does not: there a parent
 * going away is not a request to stop.
 */
import { readFileSync } from 'node:fs';

/** npm sets these for every script and `npm exec` it runs. */
export function startedByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.npm_command !== undefined || env.npm_lifecycle_event !== undefined;
}

/** The parent of `pid` from /proc (Linux), or undefined where it cannot be read. */
export function parentOf(pid: number): number | undefined {
  try {
    // The command name (field 2) is in parentheses and may hold spaces: the fields after it are fixed.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) && ppid > 0 ? ppid : undefined;
  } catch {
    return undefined;
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

export interface LauncherWatch {
  stop(): void;
}

/**
 * Calls `onGone` once when this process's parent or grandparent (the shell
 * npm runs and npm itself) is gone or this process was handed to another
 * parent. A no-op unless started by npm. The timer never keeps the process up.
 */
export function watchNpmLauncher(onGone: () => void, { intervalMs = 500, env = process.env } = {}): LauncherWatch {
  if (!startedByNpm(env)) return { stop() {} };
  const parent = process.ppid;
  const grandparent = parentOf(parent);
  const launchers = grandparent !== undefined && grandparent > 1 ? [parent, grandparent] : [parent];
  const timer = setInterval(() => {
    if (process.ppid === parent && launchers.every(alive)) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
