/**
 * The real `flotilla` CLI as a child process for the remote-access tests,
 * with stdout kept as bytes (a 50 MB stream is checked by its hash) and
 * killed at the end of the test if it is still running.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { Cleanup } from '../../support/cleanup.js';
import { CLI, REPO_ROOT } from '../../support/processes.js';

export class CliRun {
  stdout: Buffer[] = [];
  stderr = '';
  readonly exited: Promise<number>;
  readonly child: ChildProcessWithoutNullStreams;
  readonly startedAt = Date.now();

  constructor(args: string[], env: NodeJS.ProcessEnv, cleanup: Cleanup, { readStdout = true } = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1', ...env } });
    if (readStdout) this.child.stdout.on('data', (chunk: Buffer) => this.stdout.push(chunk));
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
    cleanup.add(`flotilla ${args.join(' ')}`, async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    });
  }

  get out(): string {
    return Buffer.concat(this.stdout).toString('utf8');
  }

  /** Writes `input` to stdin and closes it. */
  input(input: string | Buffer): this {
    this.child.stdin.end(input);
    return this;
  }
}
