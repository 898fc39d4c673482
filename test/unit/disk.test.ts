import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { diskCheck, formatBytes, freeBytes, freeBytesWithSource } from '../../agent/runtime/disk.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [12 * MiB, '12.0 MiB'],
    [256 * MiB, '256.0 MiB'],
    [1024 * MiB - 1, '1.0 GiB'], // 1023.99… MiB would print as "1024.0 MiB"
    [1024 * 1024 - 10, '1.0 MiB'],
    [3.25 * 1024 * MiB, '3.3 GiB'],
    [-168 * MiB, '-168.0 MiB'],
  ])('%d → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('diskCheck', () => {
  it('fails with the numbers an operator needs when image plus reserve exceed the free space', () => {
    const result = diskCheck({ needed: 12 * MiB, reserve: 256 * MiB, free: 100 * MiB, path: '/var/lib/docker' });
    expect(result).toEqual({
      ok: false,
      shortBy: 168 * MiB,
      message:
        'not enough disk: the image needs 12.0 MiB plus a reserve of 256.0 MiB, but only 100.0 MiB are free under /var/lib/docker (short by 168.0 MiB)',
    });
  });

  it('passes when image plus reserve fit exactly', () => {
    expect(diskCheck({ needed: 12 * MiB, reserve: 256 * MiB, free: 268 * MiB })).toEqual({ ok: true });
  });

  it('passes with room to spare, and with a zero reserve', () => {
    expect(diskCheck({ needed: 1_500_000, reserve: 0, free: 2_000_000 })).toEqual({ ok: true });
  });

  it('counts the reserve: an image that fits alone can still be refused', () => {
    const result = diskCheck({ needed: 50 * MiB, reserve: 100 * MiB, free: 120 * MiB, path: '/' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.shortBy).toBe(30 * MiB);
    expect(result.message).toContain('only 120.0 MiB are free under / (short by 30.0 MiB)');
  });

  it('is short by one byte when one byte is missing', () => {
    const result = diskCheck({ needed: 1000, reserve: 24, free: 1023 });
    expect(result).toMatchObject({ ok: false, shortBy: 1 });
    if (!result.ok)
      expect(result.message).toBe(
        'not enough disk: the image needs 1000 B plus a reserve of 24 B, but only 1023 B are free (short by 1 B)',
      );
  });
});

describe('freeBytes', () => {
  let dir: string | undefined;

  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('matches what df reports for /tmp, within 1%', async () => {
    const bytes = await freeBytes('/tmp');
    const { stdout } = await run('df', ['-B1', '--output=avail', '/tmp']);
    const df = Number(stdout.trim().split('\n').at(-1));
    expect(Number.isSafeInteger(df)).toBe(true);
    expect(bytes).toBeGreaterThan(0);
    // Other processes write meanwhile, so allow 1% drift between the two readings.
    expect(Math.abs(bytes - df)).toBeLessThanOrEqual(df * 0.01);
  });

  it('measures an existing path where it is', async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-disk-'));
    const measured = await freeBytesWithSource(dir);
    expect(measured.measuredAt).toBe(dir);
    expect(measured.bytes).toBeGreaterThan(0);
  });

  it('walks up to the nearest existing parent of a path that does not exist', async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-disk-'));
    const missing = join(dir, 'var', 'lib', 'docker');
    const measured = await freeBytesWithSource(missing);
    expect(measured.measuredAt).toBe(dir);
    expect(measured.bytes).toBeGreaterThan(0);
    expect(await freeBytes(missing)).toBeGreaterThan(0);
  });

  it('resolves a relative path before walking up', async () => {
    const measured = await freeBytesWithSource('no-such-dir-flotilla/deeper');
    expect(measured.measuredAt).toBe(process.cwd());
  });
});
