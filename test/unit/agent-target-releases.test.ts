/**
 * The releases dir as agent.upgrade reads it (broker/dispatcher/agent-releases.ts), over real
 * tarballs made by the system's `tar`: each found architecture's sha256, size and unpacked size,
 * the `.sha256` beside a tarball used only while it is not older than it, and the versions listed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listReleases, ReleasesDir, TarSizeReader, tarNumber, unpackedSize } from '../../broker/dispatcher/agent-releases.js';
import { scratchDir } from '../support/scratch.js';

/** A release-like tree (`flotilla/…`) with files of the given sizes, packed as `tar czf`; answers the sum of the sizes. */
function packRelease(dir: string, file: string, sizes: number[], options: { longName?: boolean } = {}): number {
  const tree = join(dir, `tree-${file}`);
  const root = join(tree, 'flotilla');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'dist'), { recursive: true });
  for (const [i, size] of sizes.entries()) writeFileSync(join(root, 'dist', `chunk-${i}.js`), Buffer.alloc(size, i + 1));
  // A symlink and a directory unpack into no file bytes.
  symlinkSync('../dist/chunk-0.js', join(root, 'bin', 'flotilla'));
  let total = sizes.reduce((a, b) => a + b, 0);
  if (options.longName) {
    // Over ustar's 100-byte name: GNU tar writes a long-name record (type L) whose data is the name, not a file.
    const deep = join(root, 'node_modules', 'a'.repeat(60), 'b'.repeat(60));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'index.js'), Buffer.alloc(777, 7));
    total += 777;
  }
  execFileSync('tar', ['--format=gnu', '-czf', join(dir, file), '-C', tree, 'flotilla']);
  return total;
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('the releases dir', () => {
  it('finds each architecture of a version with its sha256, size and the sum of its files unpacked', async () => {
    const dir = scratchDir('flotilla-releases-');
    const amd64 = packRelease(dir, 'flotilla-0.3.0-linux-amd64.tar.gz', [1, 511, 512, 513, 70_000]);
    const arm64 = packRelease(dir, 'flotilla-0.3.0-linux-arm64.tar.gz', [0, 1024, 3], { longName: true });
    packRelease(dir, 'flotilla-0.2.0-linux-amd64.tar.gz', [10]);

    const bundles = await new ReleasesDir(dir).bundles('0.3.0');

    expect(Object.keys(bundles).sort()).toEqual(['amd64', 'arm64']);
    const amdPath = join(dir, 'flotilla-0.3.0-linux-amd64.tar.gz');
    expect(bundles.amd64).toEqual({
      file: 'flotilla-0.3.0-linux-amd64.tar.gz',
      sha256: sha256(amdPath),
      bytes: statSync(amdPath).size,
      unpackedBytes: amd64,
    });
    expect(bundles.arm64?.unpackedBytes).toBe(arm64);
    expect(await new ReleasesDir(dir).bundles('0.2.0')).toEqual({ amd64: expect.objectContaining({ unpackedBytes: 10 }) });
    expect(await new ReleasesDir(dir).bundles('0.9.9')).toEqual({});
    expect(await new ReleasesDir(undefined).bundles('0.3.0')).toEqual({});
  });

  it('takes the sum from a `.sha256` beside the tarball, unless it is older than the tarball', async () => {
    const dir = scratchDir('flotilla-releases-');
    const file = 'flotilla-0.3.0-linux-amd64.tar.gz';
    packRelease(dir, file, [100]);
    const written = 'ab'.repeat(32);
    writeFileSync(join(dir, `${file}.sha256`), `${written}  ${file}\n`);
    expect((await new ReleasesDir(dir).bundles('0.3.0')).amd64?.sha256).toBe(written);

    // A bundle rebuilt after its sum was written: the stale sum is not believed.
    const past = new Date(Date.now() - 3600_000);
    utimesSync(join(dir, `${file}.sha256`), past, past);
    expect((await new ReleasesDir(dir).bundles('0.3.0')).amd64?.sha256).toBe(sha256(join(dir, file)));
  });

  it('reads a changed tarball again, and answers an unchanged one from its cache', async () => {
    const dir = scratchDir('flotilla-releases-');
    const file = 'flotilla-1.0.0-linux-arm64.tar.gz';
    const releases = new ReleasesDir(dir);
    packRelease(dir, file, [5]);
    expect((await releases.bundles('1.0.0')).arm64?.unpackedBytes).toBe(5);
    execFileSync('rm', ['-rf', join(dir, `tree-${file}`)]);
    packRelease(dir, file, [5, 6000]);
    const future = new Date(Date.now() + 5000);
    utimesSync(join(dir, file), future, future);
    expect((await releases.bundles('1.0.0')).arm64?.unpackedBytes).toBe(6005);
  });

  it('lists the versions it holds, each with its architectures, ignoring other files', async () => {
    const dir = scratchDir('flotilla-releases-');
    for (const name of [
      'flotilla-0.3.0-linux-arm64.tar.gz',
      'flotilla-0.3.0-linux-amd64.tar.gz',
      'flotilla-0.2.0-rc.1-linux-amd64.tar.gz',
    ]) {
      writeFileSync(join(dir, name), 'x');
    }
    writeFileSync(join(dir, 'flotilla-0.3.0-linux-amd64.tar.gz.sha256'), 'x');
    writeFileSync(join(dir, 'flotilla-0.3.0-darwin-arm64.tar.gz'), 'x');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    expect(await listReleases(dir)).toEqual([
      { version: '0.2.0-rc.1', arches: ['amd64'] },
      { version: '0.3.0', arches: ['amd64', 'arm64'] },
    ]);
    expect(await listReleases(join(dir, 'missing'))).toEqual([]);
  });

  it('counts a tar stream cut into chunks of any size the same, and stops at its end', async () => {
    const dir = scratchDir('flotilla-releases-');
    const total = packRelease(dir, 'flotilla-0.1.0-linux-amd64.tar.gz', [1, 2, 3, 4096, 10_000], { longName: true });
    const tar = execFileSync('gzip', ['-dc', join(dir, 'flotilla-0.1.0-linux-amd64.tar.gz')]);
    for (const chunk of [1, 7, 511, 512, 513, 65_536]) {
      const reader = new TarSizeReader();
      for (let at = 0; at < tar.length; at += chunk) reader.push(tar.subarray(at, at + chunk));
      expect(reader.total, `chunks of ${chunk}`).toBe(total);
      expect(reader.ended).toBe(true);
    }
    expect(await unpackedSize(join(dir, 'flotilla-0.1.0-linux-amd64.tar.gz'))).toBe(total);
  });

  it('reads tar numbers in octal (NUL, space or zero padded) and in base-256', () => {
    expect(tarNumber(Buffer.from('00000001750\0', 'latin1'))).toBe(0o1750);
    expect(tarNumber(Buffer.from('   1750 \0\0\0\0', 'latin1'))).toBe(0o1750);
    expect(tarNumber(Buffer.alloc(12))).toBe(0);
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeUIntBE(10 * 1024 ** 3, 6, 6);
    expect(tarNumber(big)).toBe(10 * 1024 ** 3);
  });
});
