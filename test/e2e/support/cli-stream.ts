/**
 * `flotilla` commands whose stdout is bytes, not text (a 50 MB stream from
 * `exec`): the output is hashed as it arrives, never held whole, so a test can
 * compare it with the hash the container computed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { CLI, REPO_ROOT } from '../../support/processes.js';

export interface HashedRun {
  code: number;
  stderr: string;
  bytes: number;
  sha256: string;
  /** The first 64 KiB of stdout as text, for a command that prints a line or two. */
  head: string;
  ms: number;
}

/** Runs `flotilla ARGS…`, stdin from `input` (or closed), killed after `timeoutMs`. */
export function runCliHashed(
  args: string[],
  { input, timeoutMs = 120_000 }: { input?: Buffer; timeoutMs?: number } = {},
): Promise<HashedRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: 'pipe' });
    const hash = createHash('sha256');
    let bytes = 0;
    let stderr = '';
    let head = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (bytes < 65_536) head += chunk.subarray(0, 65_536 - bytes).toString();
      bytes += chunk.length;
      hash.update(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stderr, bytes, sha256: hash.digest('hex'), head, ms: performance.now() - started });
    });
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
