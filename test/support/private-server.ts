/**
 * The process lifecycle shared by the private servers tests start (redis.ts, postgres.ts): spawn
 * in its own temp dir, wait for the line saying it is ready, stop, kill as a crash would, start
 * again on the same port and dir, and close.
 *
 * Invariants: stop(), kill() and restart() return only once the server's processes are gone;
 * close() stops the server and removes its dir, and is safe to call twice; a process exiting with
 * servers still up kills them and removes their dirs (a process killed outright takes its servers
 * with it through dyingWithParent, and its dirs go at the next start: owned-dirs.ts).
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dyingWithParent } from './die-with-parent.js';
import { waitFor } from './wait.js';

export interface ServerLaunch {
  /** The server's binary and arguments. */
  command: string;
  args: string[];
  /** Extra spawn options (uid, gid, detached); cwd is the server's dir and stdio is piped. */
  spawn?: Omit<SpawnOptions, 'cwd' | 'stdio'>;
  /** The output line that says it accepts connections. */
  readyLine: string;
  readyTimeoutMs: number;
}

const live = new Set<PrivateServerProcess>();
process.once('exit', () => {
  for (const server of live) server.killNowAndRemove();
});

export abstract class PrivateServerProcess {
  readonly host = '127.0.0.1' as const;
  /** The server's output since the last start, the tail of it. */
  output = '';
  protected child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    /** Removed by close(). */
    protected readonly rootDir: string,
    readonly port: number,
    /** For messages: "Redis", "PostgreSQL". */
    private readonly label: string,
    private readonly stopSignal: NodeJS.Signals,
    private readonly stopGraceMs: number,
  ) {
    live.add(this);
  }

  protected abstract launch(): ServerLaunch;

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error(`this ${this.label} server was closed`);
    if (this.running) return;
    const launch = this.launch();
    this.output = '';
    const [command, commandArgs] = dyingWithParent(launch.command, launch.args);
    const child = spawn(command, commandArgs, { ...launch.spawn, cwd: this.rootDir, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-64 * 1024);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    try {
      await waitFor(
        `${this.label} on 127.0.0.1:${this.port} to accept connections`,
        () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${this.label} exited: ${this.output.slice(-2000)}`);
          return this.output.includes(launch.readyLine);
        },
        { timeoutMs: launch.readyTimeoutMs, intervalMs: 20 },
      );
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.signal(this.stopSignal, this.stopGraceMs);
  }

  async kill(): Promise<void> {
    await this.signal('SIGKILL', 0);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.stop();
    } finally {
      this.closed = true;
      live.delete(this);
      rmSync(this.rootDir, { recursive: true, force: true });
    }
  }

  /** For the exit hook: nothing async is possible there. */
  killNowAndRemove(): void {
    this.killAll();
    rmSync(this.rootDir, { recursive: true, force: true });
  }

  /** SIGKILL to every process of the server at once. */
  protected killAll(): void {
    if (this.running) this.child?.kill('SIGKILL');
  }

  /**
   * Called just before a stop or kill signal: notes what else must be gone before a new server can
   * start on the same dir, and returns the wait for it.
   */
  protected leftovers(): () => Promise<void> {
    return async () => {};
  }

  /** Sends `signal` (SIGKILL to everything after `graceMs`) and waits until the server is gone. */
  private async signal(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const remaining = this.leftovers();
    if (signal === 'SIGKILL') this.killAll();
    else child.kill(signal);
    const timer = setTimeout(() => this.killAll(), graceMs);
    await this.exited;
    clearTimeout(timer);
    await remaining();
  }
}
