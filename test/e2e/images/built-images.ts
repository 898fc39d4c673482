/**
 * Gate and helpers for the tests of the images docker/build-images.sh makes (hub and
 * agent, linux/amd64 and linux/arm64, pushed to the loopback registry as manifest lists).
 *
 * Locally, without those images (or without qemu-user-static registered for arm64),
 * the tests skip with a message saying how to make them; with CI=true that is a failure:
 * .ci/run builds the images in its own stage before `npm test`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'vitest';
import { REPO_ROOT } from '../../support/processes.js';
import { docker } from '../support/docker-cli.js';
import { engineProblem, TEST_REGISTRY } from '../support/engine.js';

export const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** The per-architecture images and the manifest lists, as build-images.sh names them. */
export const REPO = `${TEST_REGISTRY}/flotilla`;
export const image = (name: 'hub' | 'agent', arch?: 'amd64' | 'arm64') => `${REPO}/${name}:${VERSION}${arch ? `-${arch}` : ''}`;
export const COMPOSE_FILE = join(REPO_ROOT, 'docker/compose.yaml');

/** The group that owns the Docker socket: the agent images run as uid 10001 and get it with --group-add. */
export function dockerSocketGroup(): string {
  return execFileSync('stat', ['-c', '%g', '/var/run/docker.sock'], { encoding: 'utf8' }).trim();
}

function qemuProblem(): string | undefined {
  try {
    if (readFileSync('/proc/sys/fs/binfmt_misc/qemu-aarch64', 'utf8').startsWith('enabled')) return undefined;
  } catch {
    // not registered (or binfmt_misc not mounted)
  }
  return 'qemu-aarch64 is not registered with binfmt_misc (apt-get install qemu-user-static binfmt-support; update-binfmts --enable qemu-aarch64)';
}

function imagesProblem(): string | undefined {
  if (engineProblem) return engineProblem;
  const missing: string[] = [];
  for (const tag of [image('hub', 'amd64'), image('agent', 'amd64'), image('agent', 'arm64')]) {
    try {
      execFileSync('docker', ['image', 'inspect', tag], { stdio: 'pipe', timeout: 10_000 });
    } catch {
      missing.push(tag);
    }
  }
  if (missing.length > 0) return `images not built: ${missing.join(', ')}`;
  return qemuProblem();
}

const problem = imagesProblem();
if (problem && process.env.CI === 'true') {
  throw new Error(`image tests require the images docker/build-images.sh makes, in CI: ${problem}`);
}
if (problem) {
  console.warn(`[images] skipping image tests: ${problem}. To run them: flock /tmp/flotilla-e2e.lock docker/build-images.sh`);
}

/** `describe` that runs only where the images and qemu are there; emulated starts are slow, hence the timeout. */
export function describeImages(name: string, body: () => void): void {
  if (problem) describe.skip(name, body);
  else describe(name, { timeout: 240_000 }, body);
}

/**
 * fetch with a deadline: docker-proxy accepts a connection on a published port before
 * the container listens and then holds it open without an answer.
 */
export function fetchSoon(url: string): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(5_000) });
}

/** The host port a container's port is published on (`docker port`), e.g. 7070/tcp -> 49153. */
export async function publishedPort(container: string, port: string): Promise<number> {
  const out = await docker('port', container, port);
  const match = /:(\d+)$/m.exec(out);
  if (!match) throw new Error(`${container} publishes no ${port}: ${out}`);
  return Number(match[1]);
}
