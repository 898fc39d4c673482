/**
 * The releases dir as agent.upgrade reads it (broker/dispatcher/agent-releases.ts), over real
 * tarballs made by the system's `tar`: each found architecture's sha256, size and unpacked size,
 * the `.sha256` beside a tarball used only while it is not older than it, and the versions listed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  listReleases,
  ReleaseFileError,
  ReleasesDir,
  readRelease,
  TarReader,
  tarNumber,
  unpackedSize,
} from '../../broker/dispatcher/agent-releases.js';
import { scratchDir } from '../support/scratch.js';

/**
 * A release-like tree (`flotilla/…`: bin/flotilla, a package.json of the file's version, files of
 * the given sizes), packed as `tar czf`; answers the sum of the sizes of its files.
 */
function packRelease(dir: string, file: string, sizes: number[], options: { longName?: boolean } = {}): number {
  const tree = join(dir, `tree-${file}`);
  const root = join(tree, 'flotilla');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'dist'), { recursive: true });
  for (const [i, size] of sizes.entries()) writeFileSync(join(root, 'dist', `chunk-${i}.js`), Buffer.alloc(size, i + 1));
  // A symlink and a directory unpack into no file bytes.
  symlinkSync('../dist/chunk-0.js', join(root, 'bin', 'flotilla'));
  const pkg = JSON.stringify({ name: 'flotilla', version: /^flotilla-(.+)-linux-/.exec(file)?.[1] });
  writeFileSync(join(root, 'package.json'), pkg);
  let total = sizes.reduce((a, b) => a + b, pkg.length);
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

/** The size of the package.json packRelease writes for `version`. */
const PACKAGE_JSON = (version: string) => JSON.stringify({ name: 'flotilla', version }).length;

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
    expect(await new ReleasesDir(dir).bundles('0.2.0')).toEqual({
      amd64: expect.objectContaining({ unpackedBytes: 10 + PACKAGE_JSON('0.2.0') }),
    });
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
    expect((await releases.bundles('1.0.0')).arm64?.unpackedBytes).toBe(5 + PACKAGE_JSON('1.0.0'));
    execFileSync('rm', ['-rf', join(dir, `tree-${file}`)]);
    packRelease(dir, file, [5, 6000]);
    const future = new Date(Date.now() + 5000);
    utimesSync(join(dir, file), future, future);
    expect((await releases.bundles('1.0.0')).arm64?.unpackedBytes).toBe(6005 + PACKAGE_JSON('1.0.0'));
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
      const reader = new TarReader();
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

  it('refuses a file that is not a gzipped tar, saying what is wrong and how to rebuild it, and logs it once', async () => {
    const dir = scratchDir('flotilla-releases-');
    const good = join(dir, 'flotilla-0.3.0-linux-amd64.tar.gz');
    packRelease(dir, 'flotilla-0.3.0-linux-amd64.tar.gz', [70_000]);
    const gzip = readFileSync(good);
    const cases: [string, Buffer, RegExp][] = [
      [
        'random bytes',
        Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)),
        /is not gzip data: incorrect header check/,
      ],
      ['a truncated gzip', gzip.subarray(0, Math.floor(gzip.length / 2)), /is cut short \(its gzip stream ends early\)/],
      ['an empty file', Buffer.alloc(0), /is empty/],
      ['gzipped text', execFileSync('gzip', ['-c'], { input: 'not a tar\n'.repeat(100) }), /holds no tar archive/],
      [
        'a tar cut before its end',
        execFileSync('gzip', ['-c'], { input: execFileSync('gzip', ['-dc', good]).subarray(0, 1536) }),
        /holds a tar archive cut short/,
      ],
    ];
    for (const [what, bytes, problem] of cases) {
      const version = `9.0.${cases.findIndex(([w]) => w === what)}`;
      const file = `flotilla-${version}-linux-amd64.tar.gz`;
      writeFileSync(join(dir, file), bytes);
      const lines: string[] = [];
      const releases = new ReleasesDir(dir, pino({ level: 'warn' }, { write: (line: string) => lines.push(line) }));
      for (const attempt of [1, 2]) {
        const err = await releases.bundles(version).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `${what}, call ${attempt}`).toBeInstanceOf(ReleaseFileError);
        expect((err as ReleaseFileError).file).toBe(file);
        expect((err as ReleaseFileError).message, what).toMatch(problem);
        expect((err as ReleaseFileError).message, what).toContain('rebuild it with docker/release-bundle.sh');
      }
      // Once for the file, although asked twice: the refusal is kept while the file is unchanged.
      expect(
        lines.map((l) => JSON.parse(l)),
        what,
      ).toEqual([
        expect.objectContaining({
          level: 40,
          file,
          msg: 'a release tarball in the releases dir is refused',
          problem: expect.stringMatching(problem),
        }),
      ]);
    }
  });

  it('refuses a tar that is no release (no bin/flotilla or package.json) or the release of another version, naming what it holds', async () => {
    const dir = scratchDir('flotilla-releases-');
    const tree = join(dir, 'tree-x');
    mkdirSync(tree, { recursive: true });
    writeFileSync(join(tree, 'x.txt'), 'x');
    execFileSync('tar', ['-czf', join(dir, 'flotilla-0.3.2-linux-amd64.tar.gz'), '-C', tree, 'x.txt']);
    await expect(new ReleasesDir(dir).bundles('0.3.2')).rejects.toThrow(
      'flotilla-0.3.2-linux-amd64.tar.gz is not a flotilla release: it lacks flotilla/bin/flotilla and flotilla/package.json (it holds x.txt); rebuild it with docker/release-bundle.sh',
    );

    // A release tree without its package.json.
    packRelease(dir, 'flotilla-0.3.3-linux-amd64.tar.gz', [10]);
    execFileSync('sh', [
      '-c',
      `gzip -dc "$1" | tar --delete -f - flotilla/package.json | gzip -c > "$1.new" && mv "$1.new" "$1"`,
      'sh',
      join(dir, 'flotilla-0.3.3-linux-amd64.tar.gz'),
    ]);
    await expect(new ReleasesDir(dir).bundles('0.3.3')).rejects.toThrow(
      /is not a flotilla release: it lacks flotilla\/package.json \(it holds flotilla, /,
    );

    // 0.3.0's bundle renamed as 0.4.0.
    packRelease(dir, 'flotilla-0.3.0-linux-arm64.tar.gz', [10]);
    execFileSync('cp', ['-p', join(dir, 'flotilla-0.3.0-linux-arm64.tar.gz'), join(dir, 'flotilla-0.4.0-linux-arm64.tar.gz')]);
    await expect(new ReleasesDir(dir).bundles('0.4.0')).rejects.toThrow(
      'flotilla-0.4.0-linux-arm64.tar.gz is not release 0.4.0: its flotilla/package.json has version "0.3.0"',
    );
    expect(Object.keys(await new ReleasesDir(dir).bundles('0.3.0'))).toEqual(['arm64']);
  });

  it('finds the release files however tar names them: with a leading ./, through a GNU long name or a pax path', async () => {
    const dir = scratchDir('flotilla-releases-');
    const tree = join(dir, 'tree');
    const root = join(tree, 'flotilla');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin', 'flotilla'), '#!/bin/sh\n');
    writeFileSync(join(root, 'package.json'), JSON.stringify({ version: '1.2.3' }));
    const dotted = join(dir, 'dotted.tar.gz');
    execFileSync('tar', ['-czf', dotted, '-C', tree, '.']);
    // A path over 100 bytes before them: GNU tar writes it as an L record, pax tar as a path= record, each naming only the entry after it.
    const long = join('flotilla', 'node_modules', 'x'.repeat(120), 'index.js');
    mkdirSync(join(tree, long, '..'), { recursive: true });
    writeFileSync(join(tree, long), 'module.exports = 1;\n');
    for (const format of ['gnu', 'pax']) {
      const packed = join(dir, `long-${format}.tar.gz`);
      execFileSync('tar', [`--format=${format}`, '-czf', packed, '-C', tree, long, 'flotilla/bin/flotilla', 'flotilla/package.json']);
      const found = await readRelease(packed);
      expect(found.firstNames, format).toEqual([long, 'flotilla/bin/flotilla', 'flotilla/package.json']);
      expect([...found.files.keys()].sort(), format).toEqual(['flotilla/bin/flotilla', 'flotilla/package.json']);
    }
    const found = await readRelease(dotted);
    expect(JSON.parse(found.files.get('flotilla/package.json')!.toString())).toEqual({ version: '1.2.3' });
    expect(found.files.get('flotilla/bin/flotilla')!.toString()).toBe('#!/bin/sh\n');
  });
});
