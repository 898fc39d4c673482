/**
 * The disk pre-flight check (agent/reconcile/disk-preflight.ts) counts the
 * agent's image store: an image the agent downloads itself needs its size
 * on the store's disk as well as in the engine, and twice its size where the
 * two share a file system; an image the engine pulls needs it only once.
 * Real parts: the loopback registry reports the image's size, and the disks
 * are tmpfs mounts of known sizes (this needs root, as the agent's tests do
 * here; without it the file skips, saying so).
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskPreflight } from '../../agent/reconcile/disk-preflight.js';
import type { DesiredApp } from '../../shared/index.js';
import { LogCapture } from '../support/logs.js';
import { gzipLayer, pushImage } from '../support/registry-push.js';
import { scratchDir } from '../support/scratch.js';

const MiB = 1024 * 1024;

function canMount(): string | undefined {
  const dir = scratchDir('flotilla-mount-probe-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch (err) {
    return `cannot mount a tmpfs (${(err as Error).message.split('\n')[0]})`;
  }
  try {
    execFileSync('curl', ['-fsS', '--max-time', '5', 'http://127.0.0.1:5000/v2/'], { stdio: 'pipe' });
  } catch {
    return 'no registry at http://127.0.0.1:5000/v2/';
  }
  return undefined;
}

const problem = canMount();
if (problem) console.warn(`[agent-image-disk] skipped: ${problem}`);

/** The same incompressible bytes on every run, so the registry keeps one copy of the layer. */
function fixedBytes(size: number): Buffer {
  return createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16)).update(Buffer.alloc(size));
}

describe.skipIf(problem !== undefined)('the disk check counts the image store', () => {
  const root = scratchDir('flotilla-disks-');
  const mounts: string[] = [];
  let image: string;
  let size: number;
  const log = new LogCapture('warn');

  /** A tmpfs of `mib` MiB under the scratch dir. */
  function disk(name: string, mib: number): string {
    const dir = join(root, name);
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  }

  beforeAll(async () => {
    const pushed = await pushImage({
      repository: 'flotilla-test/agent-disk',
      tag: 'v1',
      layers: [gzipLayer([{ path: 'data.bin', data: fixedBytes(6 * MiB) }])],
    });
    image = pushed.image;
    size = pushed.blobBytes;
    expect(size).toBeGreaterThan(6 * MiB);
    expect(size).toBeLessThan(7 * MiB);
  });

  afterAll(() => {
    for (const dir of mounts.reverse()) execFileSync('umount', [dir]);
  });

  const app = (update?: DesiredApp['update']): DesiredApp => ({
    name: 'shop',
    revision: 1,
    containers: [{ name: 'web', image }],
    ...(update ? { update } : {}),
  });

  async function shortfall(storeDir: string | undefined, dataRoot: string, update?: DesiredApp['update']): Promise<string | undefined> {
    const preflight = new DiskPreflight(0, log.logger, storeDir);
    return (await preflight.shortfalls([app(update)], new Set([image]), dataRoot)).get(image);
  }

  it('one disk of 10 MiB holds a 6 MiB image the engine pulls, not one the agent stores first', async () => {
    const shared = disk('shared', 10);
    const docker = join(shared, 'docker');
    mkdirSync(docker);
    expect(await shortfall(undefined, docker)).toBeUndefined();
    expect(await shortfall(join(shared, 'images'), docker, { pull: 'engine' })).toBeUndefined();
    const message = await shortfall(join(shared, 'images'), docker);
    expect(message).toMatch(/^not enough disk: the image needs 1[23]\.\d MiB plus a reserve of 0 B, but only 10\.0 MiB are free under /);
    expect(message).toContain(
      `the agent's image store (${join(shared, 'images')}) holds its layers until the engine has loaded them, on the same disk`,
    );
  });

  it("a store on a disk of its own must hold the image too, and the engine's disk only once", async () => {
    const engine = disk('engine', 8);
    const small = disk('small-store', 4);
    const roomy = disk('roomy-store', 8);
    expect(await shortfall(roomy, engine)).toBeUndefined();
    const message = await shortfall(small, engine);
    expect(message).toMatch(/but only 4\.0 MiB are free under .*small-store /);
    expect(message).toContain("the agent's image store");
    expect(await shortfall(small, engine, { pull: 'engine' })).toBeUndefined();
  });
});
