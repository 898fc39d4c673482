/**
 * Runs the real `flotilla` CLI as child processes (hub, agents) for
 * integration and e2e tests, and makes sure every one of them is gone afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(REPO_ROOT, 'cli/flotilla.js');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `flotilla ARGS…` to completion, feeding `input` on stdin. Never throws on a non-zero exit: tests assert the code.
 * `asUser` runs it as that user (through runuser; the test must be root), for the checks a non-root device fails.
 * A process still running after `timeoutMs` is killed, so a command that should have stopped fails its test instead of hanging it.
 */
export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; asUser?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const [command, argv] = options.asUser
    ? ['runuser', ['-u', options.asUser, '--', process.execPath, CLI, ...args]]
    : [process.execPath, [CLI, ...args]];
  return runProcess(command, argv, { ...options, cwd: options.cwd ?? REPO_ROOT, env: { ...process.env, ...options.env } });
}

/**
 * Runs any program to completion with exactly `env` (the test's own without it), feeding `input`
 * on stdin; never throws on a non-zero exit. Killed after `timeoutMs`, as runCli.
 */
export function runProcess(
  command: string,
  argv: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd: options.cwd, env: options.env ?? process.env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    // A program that exits without reading its stdin (a script failing at its first check) closes the pipe
    // under the write: that EPIPE is the program's business, not a failure of the test process.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

/** The ports and flags of a `flotilla server` on free loopback ports with its data in `dataDir`. */
export async function hubServerArgs(dataDir: string): Promise<{ args: string[]; mqttPort: number; wsPort: number; httpPort: number }> {
  const [mqttPort, wsPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const args = [
    'server',
    '--data-dir',
    dataDir,
    '--host',
    '127.0.0.1',
    '--mqtt-port',
    `${mqttPort}`,
    '--ws-port',
    `${wsPort}`,
    '--http-port',
    `${httpPort}`,
  ];
  return { args, mqttPort, wsPort, httpPort };
}

export class ManagedProcess {
  output = '';
  exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM and wait (a graceful stop), or SIGKILL at once with `hard`. */
  async stop(hard = false): Promise<void> {
    if (!this.running) return;
    this.child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

const live = new Set<ManagedProcess>();

/** `flotilla …` left running (a server, an agent, a `logs -f`); stopAll stops it. */
export function spawnCli(name: string, args: string[], env: NodeJS.ProcessEnv = {}): ManagedProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = new ManagedProcess(name, child);
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
  return proc;
}

/** Stops every process this module started, then removes every scratchDir; call from afterAll/afterEach. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
  for (const dir of scratchDirs) removeDir(dir);
  scratchDirs.clear();
}

const scratchDirs = new Set<string>();

/**
 * A fresh temp dir that the next stopAll() removes, after the processes that may write to it are
 * gone, whenever the test calls it. Unlike scratch.ts it needs no test runner: bench/ starts hubs
 * and agents through this module.
 */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.add(dir);
  return dir;
}

export interface HubProcess {
  proc: ManagedProcess;
  dataDir: string;
  mqttPort: number;
  wsPort: number;
  httpPort: number;
  url: string;
  mqttUrl: string;
  /** Stops the hub (SIGKILL with `hard`: no chance to flush or say goodbye) and starts it again on the same ports and data dir. */
  restart(options?: { hard?: boolean }): Promise<void>;
}

/**
 * `extraArgs`: more `flotilla server` flags, e.g. `--max-connect-rate-per-address 0` for thousands of agents on one address.
 * A port taken between choosing it and the hub binding it is not the test's fault: that start is retried on new ports.
 */
export async function startHubProcess(dataDir = scratchDir('flotilla-hub-'), extraArgs: string[] = []): Promise<HubProcess> {
  for (let attempt = 1; ; attempt++) {
    const hub = await spawnHub(dataDir, extraArgs);
    try {
      await waitReady(hub);
      return hub;
    } catch (err) {
      const portTaken = !hub.proc.running && /is already in use/.test(hub.proc.output);
      if (!portTaken || attempt === 3) throw err;
    }
  }
}

async function spawnHub(dataDir: string, extraArgs: string[]): Promise<HubProcess> {
  const server = await hubServerArgs(dataDir);
  const { mqttPort, wsPort, httpPort } = server;
  const args = [...server.args, ...extraArgs];
  const hub: HubProcess = {
    proc: spawnCli('hub', args),
    dataDir,
    mqttPort,
    wsPort,
    httpPort,
    url: `http://127.0.0.1:${httpPort}`,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    async restart({ hard = false } = {}) {
      await hub.proc.stop(hard);
      hub.proc = spawnCli('hub', args);
      await waitReady(hub);
    },
  };
  return hub;
}

async function waitReady(hub: HubProcess): Promise<void> {
  const proc = hub.proc;
  const outcome = await waitFor(
    `hub on port ${hub.httpPort} (output: ${proc.output.slice(-500)})`,
    async () => {
      if (!proc.running) return 'exited';
      const res = await fetch(`${hub.url}/healthz`);
      return res.ok && 'ready';
    },
    { timeoutMs: 30_000 },
  );
  if (outcome === 'exited') throw new Error(`hub on port ${hub.httpPort} exited before it was ready: ${proc.output.slice(-2000)}`);
}

export interface AgentProcess {
  proc: ManagedProcess;
  deviceId: string;
  dataDir: string;
  restart(): Promise<void>;
}

export function startAgentProcess(
  hub: HubProcess,
  deviceId: string,
  labels: Record<string, string> = {},
  { namePrefix = '', extraArgs = [] }: { namePrefix?: string; extraArgs?: string[] } = {},
  dataDir = scratchDir(`flotilla-agent-${deviceId}-`),
): AgentProcess {
  const args = ['agent', '--device-id', deviceId, '--hub-url', hub.mqttUrl, '--data-dir', dataDir, '--resync-interval', '2s'];
  if (namePrefix !== '') args.push('--container-name-prefix', namePrefix);
  args.push(...extraArgs);
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  const agent: AgentProcess = {
    proc: spawnCli(`agent ${deviceId}`, args),
    deviceId,
    dataDir,
    async restart() {
      agent.proc = spawnCli(`agent ${deviceId}`, args);
    },
  };
  return agent;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
