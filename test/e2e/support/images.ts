/**
 * Tiny test images in the loopback registry, built FROM scratch around the
 * static busybox (no public registry is reachable here).
 *
 * - web:v1 / web:v2: `httpd` on port 80 serving "v1" / "v2"; if /data exists
 *   (a volume), each boot appends a line to /data/boot.log first, so a test
 *   can tell whether a volume survived a recreate. SIGTERM stops them at
 *   once (PID 1 ignores signals it does not trap).
 * - crash:v1: exits 1 immediately.
 *
 * Images are built and pushed at most once per recipe: every image carries
 * the recipe hash as a label, and a registry that already serves images with
 * that label is left alone. A lock directory serialises test files that call
 * this concurrently from different workers. After pushing, the local copies
 * are removed so that tests exercise real pulls.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TEST_REGISTRY } from './engine.js';

const run = promisify(execFile);

export interface TestImages {
  v1: string;
  v2: string;
  crash: string;
}

export const RECIPE_LABEL = 'org.flotilla-test.recipe';
const BUSYBOX = process.env.FLOTILLA_TEST_BUSYBOX ?? '/bin/busybox';
const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

const BASE = ['FROM scratch', 'COPY busybox /bin/busybox', 'RUN ["/bin/busybox","--install","-s","/bin"]'];

function webCmd(version: string): string {
  const script = [
    `[ -d /data ] && echo "boot ${version} $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> /data/boot.log`,
    'httpd -f -p 80 -h /www &',
    "trap 'kill $!; exit 0' TERM INT",
    'wait',
  ].join('\n');
  return `CMD ${JSON.stringify(['/bin/sh', '-c', script])}`;
}

function recipes(): Record<keyof TestImages, { tag: string; dockerfile: string[] }> {
  return {
    v1: {
      tag: `${TEST_REGISTRY}/flotilla-test/web:v1`,
      dockerfile: [...BASE, 'RUN ["/bin/sh","-c","mkdir -p /www && echo v1 > /www/index.html"]', webCmd('v1')],
    },
    v2: {
      tag: `${TEST_REGISTRY}/flotilla-test/web:v2`,
      dockerfile: [...BASE, 'RUN ["/bin/sh","-c","mkdir -p /www && echo v2 > /www/index.html"]', webCmd('v2')],
    },
    crash: {
      tag: `${TEST_REGISTRY}/flotilla-test/crash:v1`,
      dockerfile: [...BASE, `CMD ${JSON.stringify(['/bin/sh', '-c', 'echo "crash v1: exiting 1" >&2; exit 1'])}`],
    },
  };
}

let once: Promise<TestImages> | undefined;

/** Builds and pushes the test images unless the registry already has this recipe; once per process. */
export function ensureTestImages(): Promise<TestImages> {
  once ??= prepare().catch((err: unknown) => {
    once = undefined; // let a later call retry
    throw err;
  });
  return once;
}

async function prepare(): Promise<TestImages> {
  const all = recipes();
  const recipe = createHash('sha256')
    .update(JSON.stringify(Object.values(all).map((r) => r.dockerfile)))
    .digest('hex')
    .slice(0, 16);
  const images: TestImages = { v1: all.v1.tag, v2: all.v2.tag, crash: all.crash.tag };

  const lock = join(tmpdir(), `flotilla-test-images-${createHash('sha256').update(TEST_REGISTRY).digest('hex').slice(0, 8)}.lock`);
  await acquire(lock);
  try {
    const current = await Promise.all(Object.values(images).map((tag) => registryLabel(tag, RECIPE_LABEL)));
    if (current.every((value) => value === recipe)) return images;

    const dir = await mkdtemp(join(tmpdir(), 'flotilla-test-images-'));
    try {
      await copyFile(BUSYBOX, join(dir, 'busybox'));
      for (const [name, { tag, dockerfile }] of Object.entries(all)) {
        const file = join(dir, `Dockerfile.${name}`);
        // The label goes last so the busybox layers stay shared between variants.
        await writeFile(file, `${[...dockerfile, `LABEL ${RECIPE_LABEL}=${recipe}`].join('\n')}\n`);
        await docker(['build', '-q', '-f', file, '-t', tag, dir]);
      }
      for (const tag of Object.values(images)) await docker(['push', tag]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    for (const tag of Object.values(images)) {
      // A concurrent test may already run a container from an older copy; then
      // the local image stays and only that test's pulls are short-circuited.
      await docker(['rmi', tag]).catch((err: Error) => console.warn(`[e2e] could not remove local ${tag}: ${err.message}`));
    }
    return images;
  } finally {
    await rmdir(lock).catch(() => {});
  }
}

async function docker(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('docker', args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`docker ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** mkdir is atomic: whoever creates the directory holds the lock. A lock older than two minutes is stale. */
async function acquire(lock: string): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      await mkdir(lock);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const age = await stat(lock).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > 120_000) await rmdir(lock).catch(() => {});
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lock}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function splitReference(image: string): { registry: string; repository: string; tag: string } {
  const slash = image.indexOf('/');
  const colon = image.lastIndexOf(':');
  if (slash < 0 || colon < slash) throw new Error(`expected registry/repository:tag, got ${image}`);
  return { registry: image.slice(0, slash), repository: image.slice(slash + 1, colon), tag: image.slice(colon + 1) };
}

/** A label from the image config in the registry, or undefined when the tag is missing. */
async function registryLabel(image: string, label: string): Promise<string | undefined> {
  const { registry, repository, tag } = splitReference(image);
  const manifest = await fetch(`http://${registry}/v2/${repository}/manifests/${tag}`, { headers: { accept: MANIFEST_V2 } });
  if (!manifest.ok) return undefined;
  const { config } = (await manifest.json()) as { config?: { digest?: string } };
  if (!config?.digest) return undefined;
  const blob = await fetch(`http://${registry}/v2/${repository}/blobs/${config.digest}`);
  if (!blob.ok) return undefined;
  const body = (await blob.json()) as { config?: { Labels?: Record<string, string> } };
  return body.config?.Labels?.[label];
}

/**
 * Tags an image that is already in the registry under a new tag, without a
 * local copy (registry API: fetch the manifest, put it back under the new
 * tag). Gives a test a reference that is certainly not present locally.
 */
export async function retagInRegistry(image: string, newTag: string): Promise<string> {
  const { registry, repository, tag } = splitReference(image);
  const base = `http://${registry}/v2/${repository}/manifests`;
  const got = await fetch(`${base}/${tag}`, { headers: { accept: MANIFEST_V2 } });
  if (!got.ok) throw new Error(`GET manifest ${image}: HTTP ${got.status}`);
  const body = Buffer.from(await got.arrayBuffer());
  const put = await fetch(`${base}/${newTag}`, {
    method: 'PUT',
    headers: { 'content-type': got.headers.get('content-type') ?? MANIFEST_V2 },
    body,
  });
  if (!put.ok) throw new Error(`PUT manifest ${registry}/${repository}:${newTag}: HTTP ${put.status} ${await put.text()}`);
  return `${registry}/${repository}:${newTag}`;
}
