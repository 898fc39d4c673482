/**
 * A login shell on the device's host, for `flotilla shell`.
 *
 * No native pty addon (the release bundle would need it built for every
 * device architecture): a terminal comes from util-linux's `script`, which
 * runs the shell on a pty of its own and relays it over plain pipes.
 * `-q` no banner, `-f` flush at once, `-e` exit with the shell's code,
 * `-c` the command; the typescript goes to /dev/null. Its terminal is
 * resized with `stty -F` on that pty, which the shell's stdin is, and the
 * kernel sends the shell SIGWINCH. Without a terminal the shell runs on pipes.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { PassThrough } from 'node:stream';
import type { RemoteProcess } from '../runtime/runtime.js';

/** Time the shell gets between SIGHUP and SIGKILL. */
const KILL_GRACE_MS = 1_000;
/** How long to look for the shell's pty after `script` started. */
const PTY_WAIT_MS = 3_000;

export interface HostShellOptions {
  tty: boolean;
  /** The shell (default $SHELL, else /bin/sh). */
  shell?: string;
}

export function startHostShell(options: HostShellOptions): RemoteProcess {
  const shell = options.shell ?? (process.env.SHELL || '/bin/sh');
  const env = { ...process.env, TERM: process.env.TERM ?? 'xterm-256color' };
  // Its own process group, so that stopping it reaches what it started too.
  const child = options.tty
    ? spawn('script', ['-qfec', `${shell} -l`, '/dev/null'], { stdio: 'pipe', detached: true, env })
    : spawn(shell, ['-l'], { stdio: 'pipe', detached: true, env });
  return new HostShell(child, options);
}

class HostShell implements RemoteProcess {
  readonly stdout;
  readonly stderr;
  readonly stdin;
  private readonly exit: Promise<number>;
  private done = false;
  private pty: Promise<string | undefined> | undefined;

  constructor(
    private readonly child: ChildProcess,
    options: HostShellOptions,
  ) {
    this.stdin = child.stdin!;
    if (options.tty) {
      // `script` writes only its own complaints to stderr: they belong on the terminal.
      const merged = new PassThrough();
      let open = 2;
      for (const source of [child.stdout!, child.stderr!]) {
        source.pipe(merged, { end: false });
        source.once('end', () => {
          open -= 1;
          if (open === 0) merged.end();
        });
      }
      this.stdout = merged;
      this.stderr = undefined;
    } else {
      this.stdout = child.stdout!;
      this.stderr = child.stderr!;
    }
    this.exit = new Promise((resolve, reject) => {
      child.once('error', (err) => {
        this.done = true;
        reject(new Error(`starting the host shell failed: ${err.message}`));
        // No process: its pipes never end on their own.
        child.stdout?.destroy();
        child.stderr?.destroy();
      });
      child.once('close', (code, signal) => {
        this.done = true;
        resolve(code ?? 128 + signalNumber(signal));
      });
    });
    this.exit.catch(() => {});
  }

  async resize(rows: number, cols: number): Promise<void> {
    if (this.pty === undefined) this.pty = findPty(this.child.pid);
    const pty = await this.pty;
    if (pty === undefined) throw new Error('the host shell has no terminal to resize');
    await new Promise<void>((resolve, reject) =>
      execFile('stty', ['-F', pty, 'rows', String(rows), 'cols', String(cols)], { timeout: 5_000 }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  exited(): Promise<number> {
    return this.exit;
  }

  kill(): void {
    if (this.done) return;
    const pid = this.child.pid;
    if (pid === undefined) return;
    // script made the shell a session leader of its own: signal it as well as script's group.
    const targets = [-pid, ...childrenOf(pid)];
    for (const target of targets) signal(target, 'SIGHUP');
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.child.stdin?.destroy();
    setTimeout(() => {
      if (this.done) return;
      for (const target of targets) signal(target, 'SIGKILL');
    }, KILL_GRACE_MS).unref();
  }
}

/** The pty of the shell `script` runs: its stdin, once it exists. */
async function findPty(scriptPid: number | undefined): Promise<string | undefined> {
  if (scriptPid === undefined) return undefined;
  const deadline = Date.now() + PTY_WAIT_MS;
  while (Date.now() < deadline) {
    for (const pid of childrenOf(scriptPid)) {
      try {
        const stdin = readlinkSync(`/proc/${pid}/fd/0`);
        if (stdin.startsWith('/dev/pts/')) return stdin;
      } catch {
        // Not there yet, or gone.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return undefined;
}

/** Pids whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Kernels without CONFIG_PROC_CHILDREN: the parent pid of every process.
    const children: number[] = [];
    for (const entry of safeReaddir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === pid) children.push(Number(entry));
      } catch {
        // Gone meanwhile.
      }
    }
    return children;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

/** A shell killed by a signal exits 128 + its number, as shells report it. */
function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 1 : (constants.signals[signal] ?? 1);
}
