/**
 * Commands started in a process group of their own, so that a test can end everything a launcher
 * started (`npx flotilla …` does not pass SIGTERM on to node) with one signal to the group.
 * `killStartedGroups()` in an afterEach ends what a test left running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { REPO_ROOT } from './processes.js';

export interface GroupProcess {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output: () => string;
}

const groups: number[] = [];

/** `command args` from the repository root, detached into a new process group, its output kept. */
export function spawnInGroup(command: string, args: string[]): GroupProcess {
  const child = spawn(command, args, { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) groups.push(child.pid);
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => output };
}

/** SIGKILL to every group started since the last call. */
export function killStartedGroups(): void {
  for (const group of groups.splice(0)) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
