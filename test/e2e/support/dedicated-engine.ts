/**
 * A second Docker Engine for one test file, so the test may stop and restart
 * it without disturbing the shared engine other test files use at the same time.
 *
 * It has its own data root, exec root (its own managed containerd), pid file
 * and socket under a temp dir, and no config file but an empty one. It runs in
 * a network namespace of its own (`unshare --net`): its default bridge,
 * iptables rules and container addresses live there, so it cannot touch the
 * host's `docker0`. (Started in the host's namespace with `--bridge=none`,
 * dockerd deletes the host's `docker0`, which breaks the shared engine.) The
 * price: it cannot reach the loopback registry, so images are copied into it
 * from the shared engine (`docker save | docker load`). Agents talk to it
 * through its unix socket (`DOCKER_HOST`), which the namespace does not affect.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../../support/wait.js';
import { docker } from './docker-cli.js';

const run = promisify(execFile);

export interface DedicatedEngine {
  /** `unix:///…/docker.sock`: for `DOCKER_HOST` and `docker -H`. */
  host: string;
  /** `docker -H host ARGS…`. */
  docker(...args: string[]): Promise<string>;
  /** Stops the engine (SIGTERM, as a service manager does) and waits until it is gone; it stops its containers. */
  stop(): Promise<void>;
  /** Starts it again on the same data root; containers with a restart policy come back. */
  start(): Promise<void>;
  /** Copies an image from the shared engine (pulled there from the loopback registry, then untagged again). */
  loadImage(image: string): Promise<void>;
  /** The engine's log so far (all of its runs). */
  log(): string;
  /** Removes every container, stops the engine and deletes its directories. */
  destroy(): Promise<void>;
}

/** dockerd is in /usr/sbin on Debian, which a test runner's PATH may lack. */
function dockerdPath(): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'])) {
    if (dir !== '' && existsSync(join(dir, 'dockerd'))) return join(dir, 'dockerd');
  }
  throw new Error('dockerd not found on PATH nor in /usr/sbin, /usr/bin');
}

export async function startDedicatedEngine(): Promise<DedicatedEngine> {
  // Short: the socket path must fit in sun_path (108 bytes).
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const logFile = join(dir, 'dockerd.log');
  const config = join(dir, 'daemon.json');
  writeFileSync(config, '{}\n');
  const args = [
    '--net',
    '--',
    dockerdPath(),
    '--config-file',
    config,
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '--pidfile',
    join(dir, 'docker.pid'),
    '--host',
    host,
  ];
  let daemon: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const cli = (...rest: string[]) => docker('-H', host, ...rest);
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  const start = async () => {
    const out = openSync(logFile, 'a');
    // unshare execs dockerd: the child is the daemon itself.
    const child = spawn('unshare', args, { stdio: ['ignore', out, out] });
    closeSync(out);
    daemon = child;
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor(
      `the dedicated dockerd on ${socket}`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dockerd exited: ${log().slice(-2000)}`);
        await cli('version', '--format', '{{.Server.Version}}');
        return true;
      },
      { timeoutMs: 60_000 },
    );
  };

  const stop = async () => {
    const child = daemon;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    // dockerd gives containers their stop grace (10 s) and then shuts containerd down.
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    await exited;
    clearTimeout(timer);
  };

  // A worker that dies without its afterAll must not leave a daemon behind.
  const onExit = () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGTERM');
  };
  process.once('exit', onExit);

  const engine: DedicatedEngine = {
    host,
    docker: cli,
    stop,
    start,
    log,
    async loadImage(image: string) {
      await docker('pull', '-q', image);
      try {
        await run('sh', ['-c', 'docker save "$1" | docker -H "$2" load -q', 'sh', image, host], { timeout: 120_000 });
      } finally {
        // Other tests pull this reference for real: leave the shared engine as it was.
        await docker('rmi', image).catch(() => undefined);
      }
    },
    async destroy() {
      if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
        const ids = await cli('ps', '-aq').catch(() => '');
        if (ids !== '') await cli('rm', '-f', '-v', ...ids.split('\n')).catch(() => undefined);
      }
      await stop();
      // A daemon killed with SIGKILL leaves its managed containerd running (its command line names our exec root).
      const containerd = join(dir, 'exec', 'containerd', 'containerd.pid');
      const pid = existsSync(containerd) ? Number(readFileSync(containerd, 'utf8').trim()) : 0;
      const cmdline = pid > 0 && existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
      if (cmdline.includes('containerd') && cmdline.includes(dir)) process.kill(pid, 'SIGKILL');
      // A daemon that had to be killed may leave its overlay mounts behind; they would make rm fail.
      const mounts = readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((line) => line.split(' ')[1] ?? '')
        .filter((mountPoint) => mountPoint.startsWith(dir))
        .reverse();
      for (const mountPoint of mounts) await run('umount', ['-l', mountPoint]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      process.removeListener('exit', onExit);
    },
  };
  try {
    await start();
  } catch (err) {
    const tail = log().slice(-2000);
    await engine.destroy().catch(() => undefined);
    throw new Error(`could not start a dedicated dockerd: ${(err as Error).message}\n${tail}`);
  }
  return engine;
}
