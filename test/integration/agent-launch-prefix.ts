/**
 * A release prefix (/opt/flotilla in miniature) for the launcher's tests: a
 * temp dir holding the real docker/agent-launch.sh as `launch`, releases whose
 * `bin/flotilla` are small sh scripts, the `current`/`previous` links and the
 * `upgrade/` files, and a loop that plays systemd's `Restart=always`.
 *
 * Every fake release appends what it saw to one record file, so a test reads
 * which release ran, with which pid, arguments and environment, and which was
 * stopped by a signal. Launchers start in a process group of their own:
 * `killAll()` ends each with everything it started, as a power cut would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';

/** How long, after the launcher exits, its stderr is waited for to end. */
const STDERR_DRAIN_MS = 2_000;

export const LAUNCHER = join(REPO_ROOT, 'docker/agent-launch.sh');

/** The exit code of a `runs` release stopped by TERM or INT: its own, so a test can tell it from the launcher's. */
export const STOPPED_EXIT = 7;

/**
 * - `runs`: runs until TERM or INT, then records it and exits with STOPPED_EXIT (a healthy agent; the
 *   test confirms the trial for it, as the agent would);
 * - `crashes`: exits 1 at once;
 * - `hangs`: runs and ignores TERM and INT (only KILL ends it), never confirming.
 */
export type ReleaseKind = 'runs' | 'crashes' | 'hangs';

/** The POSIX shells the launcher must run under: Debian's dash, and busybox's for small devices. */
export const SHELLS: { name: string; command: string[] }[] = [
  { name: 'dash', command: ['dash'] },
  ...(existsSync('/usr/bin/busybox') || existsSync('/bin/busybox') ? [{ name: 'busybox sh', command: ['busybox', 'sh'] }] : []),
];

export interface Started {
  version: string;
  pid: number;
  trial: string;
  releasesDir: string;
  args: string;
}

export interface Launch {
  child: ChildProcess;
  pid: number;
  stderr: () => string;
  /** The exit code, or the signal's name when it was killed by one. */
  exited: Promise<number | string>;
}

export class Prefix {
  readonly dir = scratchDir('flotilla-launch-');
  private readonly record = join(this.dir, 'record');
  private readonly launches: Launch[] = [];

  constructor(private readonly shell: string[]) {
    copyFileSync(LAUNCHER, join(this.dir, 'launch'));
    mkdirSync(join(this.dir, 'upgrade'));
    writeFileSync(this.record, '');
  }

  release(version: string, kind: ReleaseKind): this {
    const bin = join(this.dir, version, 'bin');
    mkdirSync(bin, { recursive: true });
    const body = {
      runs: `trap 'printf "stopped\\t%s\\n" "${version}" >>"${this.record}"; exit ${STOPPED_EXIT}' TERM INT\nwhile :; do sleep 1 & wait $!; done`,
      crashes: 'exit 1',
      hangs: "trap '' TERM INT\nexec sleep 3600",
    }[kind];
    writeFileSync(
      join(bin, 'flotilla'),
      `#!/bin/sh\nprintf 'started\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "${version}" "$$" "\${FLOTILLA_TRIAL:-}" "\${FLOTILLA_RELEASES_DIR:-}" "$*" >>"${this.record}"\n${body}\n`,
    );
    chmodSync(join(bin, 'flotilla'), 0o755);
    return this;
  }

  link(name: 'current' | 'previous', version: string): this {
    symlinkSync(version, join(this.dir, name));
    return this;
  }

  linkTarget(name: 'current' | 'previous'): string | undefined {
    return existsSync(join(this.dir, name)) ? readlinkSync(join(this.dir, name)) : undefined;
  }

  path(file: string): string {
    return join(this.dir, file);
  }

  /** `upgrade/trial` as the agent writes it; a deadline in seconds from now. */
  trial({
    version,
    starts = 0,
    deadlineIn = 600,
    revision = 12,
  }: {
    version: string;
    starts?: number;
    deadlineIn?: number;
    revision?: number;
  }): this {
    const deadline = Math.floor(Date.now() / 1000) + deadlineIn;
    writeFileSync(
      this.path('upgrade/trial'),
      `version=${version}\nprevious=0.2.0\nrevision=${revision}\ndeadline=${deadline}\nstarts=${starts}\n`,
    );
    return this;
  }

  /** A `key=value` file of upgrade/, or undefined when it is absent. */
  upgradeFile(name: 'trial' | 'rolled-back'): Record<string, string> | undefined {
    const file = this.path(`upgrade/${name}`);
    if (!existsSync(file)) return undefined;
    return Object.fromEntries(
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line.includes('='))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
  }

  /** Every start and stop the fake releases recorded, in order. */
  started(): Started[] {
    return this.lines()
      .filter((fields) => fields[0] === 'started')
      .map(([, version = '', pid = '', trial = '', releasesDir = '', args = '']) => ({
        version,
        pid: Number(pid),
        trial,
        releasesDir,
        args,
      }));
  }

  stopped(): string[] {
    return this.lines()
      .filter((fields) => fields[0] === 'stopped')
      .map((fields) => fields[1] ?? '');
  }

  private lines(): string[][] {
    return readFileSync(this.record, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\t'));
  }

  /** `sh launch ARGS…` as systemd's ExecStart runs it, once. */
  launch(args: string[] = ['agent', '--data-dir', '/var/lib/flotilla-agent'], env: Record<string, string> = {}): Launch {
    const child = spawn(this.shell[0]!, [...this.shell.slice(1), this.path('launch'), ...args], {
      cwd: this.dir,
      env: { ...process.env, ...env },
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // 'exit' can come before the last of stderr has been read: what the launcher said last (its
    // reason for exiting) is waited for, up to STDERR_DRAIN_MS, in case a child it left holds the pipe.
    const exited = new Promise<number | string>((resolve) =>
      child.on('exit', (code, signal) => {
        const status = code ?? signal ?? 'unknown';
        const stream = child.stderr;
        if (!stream || stream.readableEnded) return resolve(status);
        const drained = () => resolve(status);
        stream.once('end', drained);
        setTimeout(drained, STDERR_DRAIN_MS).unref();
      }),
    );
    const launch = { child, pid: child.pid!, stderr: () => stderr, exited };
    this.launches.push(launch);
    return launch;
  }

  /**
   * systemd's `Restart=always`: the launcher started again each time it exits (without the
   * 5 s pause), until `done` holds while one runs. Returns every launch, the running one last.
   */
  async underSystemd(
    done: () => boolean,
    { maxStarts = 8, env = {}, args }: { maxStarts?: number; env?: Record<string, string>; args?: string[] } = {},
  ): Promise<Launch[]> {
    const launches: Launch[] = [];
    for (let start = 1; start <= maxStarts; start++) {
      const launch = this.launch(args, env);
      launches.push(launch);
      let ended = false;
      void launch.exited.then(() => {
        ended = true;
      });
      for (;;) {
        if (!ended && done()) return launches;
        if (ended) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // A power cut takes everything the launcher started with it.
      this.killGroup(launch);
    }
    const said = launches.map((l) => l.stderr()).join('');
    throw new Error(
      `no wanted state after ${maxStarts} starts; the launchers said:\n${said}\nreleases recorded: ${readFileSync(this.record, 'utf8')}`,
    );
  }

  killGroup(launch: Launch): void {
    try {
      process.kill(-launch.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** Ends every launcher with all it started; call from afterEach. */
  killAll(): void {
    for (const launch of this.launches.splice(0)) this.killGroup(launch);
  }
}

/** Whether a process with this pid exists (a zombie counts as gone for the tests: it is reaped by its parent). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
  return !/^\d+ \(.*\) Z /.test(stat);
}
