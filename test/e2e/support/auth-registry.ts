/**
 * A second loopback registry that challenges: Debian's `docker-registry`
 * with htpasswd auth, holding a copy of the test web image under
 * `HOST/flotilla-test/private:TAG`. Tests use it to prove that credentials
 * from the app spec reach the registry.
 *
 * Setup logs in with a throwaway DOCKER_CONFIG directory, so the user's
 * ~/.docker/config.json is never touched and nothing (neither the docker CLI
 * nor anything else on the machine) holds credentials for this registry
 * when the tests run: the only way to pull is with the spec's credentials.
 * The local copies are removed after the push, so pulls are real.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../support/ports.js';
import { ensureTestImages, retagInRegistry } from './images.js';

const run = promisify(execFile);

export const AUTH_REGISTRY_REPOSITORY = 'flotilla-test/private';

export interface AuthRegistry {
  /** `127.0.0.1:PORT`. */
  host: string;
  username: string;
  password: string;
  /** `HOST/flotilla-test/private:TAG`, for one of the tags pushed. */
  image(tag?: string): string;
  stop(): Promise<void>;
}

export interface AuthRegistryOptions {
  /** Tags to push (all the same image, the test web:v1). Default: `['v1']`. */
  tags?: string[];
}

async function command(file: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  try {
    const child = run(file, args, {
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    });
    if (options.input !== undefined) child.child.stdin?.end(options.input);
    return (await child).stdout.trim();
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Debian's apache2-utils provides it; docker-registry accepts only bcrypt entries, hence -B. */
async function htpasswdEntry(username: string, password: string): Promise<string> {
  try {
    return await command('htpasswd', ['-Bbn', username, password]);
  } catch (err) {
    if ((err as Error).message.includes('ENOENT')) {
      throw new Error('htpasswd not found: apt-get install apache2-utils (listed in .ci/run)');
    }
    throw err;
  }
}

/** HTTP status of GET /v2/ via curl, or undefined when nothing answers. */
async function v2Status(host: string): Promise<number | undefined> {
  try {
    const code = await command('curl', ['-sS', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', `http://${host}/v2/`]);
    const status = Number(code);
    return status > 0 ? status : undefined;
  } catch {
    return undefined;
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Starts the registry on a free loopback port; retries on another port if it exits during startup (port taken meanwhile). */
async function serve(dir: string, htpasswdFile: string): Promise<{ child: ChildProcess; host: string; output: () => string }> {
  let lastFailure = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const host = `127.0.0.1:${await freePort()}`;
    const storage = join(dir, `storage-${attempt}`);
    await mkdir(storage, { recursive: true });
    const config = join(dir, `config-${attempt}.yml`);
    await writeFile(
      config,
      [
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
      ].join('\n'),
    );
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

    const deadline = Date.now() + 30_000;
    let status: number | undefined;
    while (Date.now() < deadline) {
      const failed = await Promise.race([spawnError, new Promise<undefined>((resolve) => setTimeout(resolve, 100, undefined))]);
      if (failed) throw new Error(`could not start docker-registry (apt-get install docker-registry): ${failed.message}`);
      if (child.exitCode !== null || child.signalCode !== null) break;
      status = await v2Status(host);
      if (status === 401) return { child, host, output: () => output };
      if (status !== undefined) break; // something else answers on this port, or auth is off
    }
    await stopProcess(child);
    lastFailure = `attempt ${attempt} on ${host}: ${status === undefined ? 'no answer' : `GET /v2/ answered ${status}, expected 401`}; output: ${output.slice(-2_000)}`;
  }
  throw new Error(`docker-registry with htpasswd auth did not come up: ${lastFailure}`);
}

/**
 * Starts the authenticating registry and pushes the test web image into it.
 * Call `stop()` in afterAll: it kills the registry and removes its files.
 */
export async function startAuthRegistry({ tags = ['v1'] }: AuthRegistryOptions = {}): Promise<AuthRegistry> {
  const username = `user-${randomBytes(3).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-auth-registry-'));
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child) await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const htpasswdFile = join(dir, 'htpasswd');
    await writeFile(htpasswdFile, `${await htpasswdEntry(username, password)}\n`, { mode: 0o600 });
    const served = await serve(dir, htpasswdFile);
    child = served.child;
    const { host } = served;
    const image = (tag = 'v1') => `${host}/${AUTH_REGISTRY_REPOSITORY}:${tag}`;

    // The source: web:v1 under a tag of its own in the open registry, so that
    // removing our local copy never untags an image another test file uses.
    const { v1 } = await ensureTestImages();
    const source = await retagInRegistry(v1, `auth-src-${randomBytes(4).toString('hex')}`);
    const targets = tags.map((tag) => image(tag));
    const dockerConfig = join(dir, 'docker-config');
    await mkdir(dockerConfig);
    const env = { DOCKER_CONFIG: dockerConfig };
    try {
      await command('docker', ['pull', '-q', source]);
      for (const target of targets) await command('docker', ['tag', source, target]);
      await command('docker', ['login', host, '-u', username, '--password-stdin'], { input: password, env });
      try {
        for (const target of targets) await command('docker', ['push', '-q', target], { env });
      } finally {
        await command('docker', ['logout', host], { env });
        await rm(dockerConfig, { recursive: true, force: true });
      }
    } finally {
      for (const ref of [...targets, source]) await command('docker', ['rmi', ref]).catch(() => undefined);
    }
    return { host, username, password, image, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
