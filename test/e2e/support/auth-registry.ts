/**
 * A second loopback registry that challenges (test/support/password-registry.ts),
 * holding a copy of the test web image under `HOST/flotilla-test/private:TAG`.
 * Tests use it to prove that credentials from the app spec reach the registry.
 *
 * Setup logs in with a throwaway DOCKER_CONFIG directory, so the user's
 * ~/.docker/config.json is never touched and nothing (neither the docker CLI
 * nor anything else on the machine) holds credentials for this registry
 * when the tests run: the only way to pull is with the spec's credentials.
 * The local copies are removed after the push, so pulls are real.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type PasswordRegistry, startPasswordRegistry } from '../../support/password-registry.js';
import { ensureTestImages, retagInRegistry } from './images.js';

const run = promisify(execFile);

export const AUTH_REGISTRY_REPOSITORY = 'flotilla-test/private';

export interface AuthRegistry extends PasswordRegistry {
  /** `HOST/flotilla-test/private:TAG`, for one of the tags pushed. */
  image(tag?: string): string;
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

/**
 * Starts the authenticating registry and pushes the test web image into it.
 * Call `stop()` in afterAll: it kills the registry and removes its files.
 */
export async function startAuthRegistry({ tags = ['v1'] }: AuthRegistryOptions = {}): Promise<AuthRegistry> {
  const registry = await startPasswordRegistry();
  const { host, username, password } = registry;
  const image = (tag = 'v1') => `${host}/${AUTH_REGISTRY_REPOSITORY}:${tag}`;
  try {
    // The source: web:v1 under a tag of its own in the open registry, so that
    // removing our local copy never untags an image another test file uses.
    const { v1 } = await ensureTestImages();
    const source = await retagInRegistry(v1, `auth-src-${randomBytes(4).toString('hex')}`);
    const targets = tags.map((tag) => image(tag));
    const dockerConfig = await mkdtemp(join(tmpdir(), 'flotilla-auth-registry-docker-'));
    const env = { DOCKER_CONFIG: dockerConfig };
    try {
      await command('docker', ['pull', '-q', source]);
      for (const target of targets) await command('docker', ['tag', source, target]);
      await command('docker', ['login', host, '-u', username, '--password-stdin'], { input: password, env });
      try {
        for (const target of targets) await command('docker', ['push', '-q', target], { env });
      } finally {
        await command('docker', ['logout', host], { env });
      }
    } finally {
      await rm(dockerConfig, { recursive: true, force: true });
      for (const ref of [...targets, source]) await command('docker', ['rmi', ref]).catch(() => undefined);
    }
    return { ...registry, image };
  } catch (err) {
    await registry.stop();
    throw err;
  }
}
