/**
 * A registry of its own that wants Basic credentials: Debian's `docker-registry` with htpasswd auth
 * (bcrypt), on a free loopback port, storing under a temp dir. Tests of credentials start one;
 * nothing on the machine holds its password, so a request that gets through can only have used
 * the one the test gave.
 *
 * The registry dies with the test process (setpriv's parent-death signal), so a worker killed
 * outright leaves none behind. A port taken between freePort() and the registry's bind makes it
 * exit at start: it is started again on another port, at most three times.
 *
 * Needs `htpasswd` (apache2-utils) and `docker-registry` (both installed by .ci/run); no Docker
 * Engine.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dyingWithParent } from './die-with-parent.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const START_ATTEMPTS = 3;
const START_TIMEOUT_MS = 30_000;

export interface PasswordRegistry {
  /** `127.0.0.1:<port>`. */
  host: string;
  username: string;
  password: string;
  /** Kills the registry and removes its storage; idempotent. */
  stop(): Promise<void>;
}

export async function startPasswordRegistry(): Promise<PasswordRegistry> {
  const username = `user-${randomBytes(3).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-password-registry-'));
  let child: ChildProcess | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      if (child) await kill(child);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  try {
    const htpasswdFile = join(dir, 'htpasswd');
    await writeFile(htpasswdFile, `${await htpasswdEntry(username, password)}\n`, { mode: 0o600 });
    const served = await serve(dir, htpasswdFile);
    child = served.child;
    return { host: served.host, username, password, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** docker-registry accepts only bcrypt entries, hence -B. */
async function htpasswdEntry(username: string, password: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('htpasswd', ['-Bbn', username, password]);
    return stdout.trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('htpasswd not found: apt-get install apache2-utils (listed in .ci/run)');
    }
    throw err;
  }
}

async function serve(dir: string, htpasswdFile: string): Promise<{ child: ChildProcess; host: string }> {
  let lastFailure = '';
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const host = `127.0.0.1:${await freePort()}`;
    const storage = join(dir, `storage-${attempt}`);
    await mkdir(storage, { recursive: true });
    const config = join(dir, `config-${attempt}.yml`);
    await writeFile(config, registryConfig(host, storage, htpasswdFile));
    const [command, args] = dyingWithParent('docker-registry', ['serve', config]);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
    });

    const status = await challengeStatus(child, host, () => spawnError);
    if (status === 401) return { child, host };
    await kill(child);
    if (spawnError) throw new Error(`could not start docker-registry (apt-get install docker-registry): ${spawnError.message}`);
    if (/command not found|No such file|cannot execute/i.test(output)) {
      throw new Error(`could not start docker-registry (apt-get install docker-registry): ${output.trim()}`);
    }
    lastFailure = `attempt ${attempt} on ${host}: ${status === undefined ? 'no answer' : `GET /v2/ answered ${status}, expected 401`}; output: ${output.slice(-2_000)}`;
  }
  throw new Error(`docker-registry with htpasswd auth did not come up: ${lastFailure}`);
}

function registryConfig(host: string, storage: string, htpasswdFile: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${host}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    'auth:',
    '  htpasswd:',
    '    realm: flotilla-test',
    `    path: ${htpasswdFile}`,
    '',
  ].join('\n');
}

/**
 * What GET /v2/ answers once something answers: 401 is this registry up and challenging; another
 * status is something else on the port. Undefined when the registry exited or never answered.
 */
async function challengeStatus(child: ChildProcess, host: string, spawnError: () => Error | undefined): Promise<number | undefined> {
  return waitFor(
    `docker-registry on ${host} to answer`,
    async () => {
      if (spawnError() || child.exitCode !== null || child.signalCode !== null) return 0;
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
      await res?.arrayBuffer().catch(() => undefined);
      return res?.status;
    },
    { timeoutMs: START_TIMEOUT_MS, intervalMs: 100 },
  ).then(
    (status) => status || undefined,
    () => undefined,
  );
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}
