/**
 * The docker save-format archive the agent streams into the engine's load:
 * read back with a tar reader, what the engine will see (manifest.json, the
 * config, the layer files the engine lacks and only those); the tags a
 * reference gives it; and that a reader who stops early leaves no layer file
 * open. The engine's own reading of such an archive is in
 * test/e2e/image-load.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { imageArchive, repoTagsFor } from '../../agent/images/image-archive.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const hexOf = (digest: string) => digest.slice('sha256:'.length);

/** Every entry of a tar stream, by name. */
async function entries(archive: Readable): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  const reader = extract();
  const done = new Promise<void>((resolve, reject) => {
    reader.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk) => {
        chunks.push(chunk as Buffer);
      });
      stream.on('end', () => {
        found.set(header.name, Buffer.concat(chunks));
        next();
      });
    });
    reader.on('finish', () => resolve());
    reader.on('error', reject);
    archive.on('error', reject);
  });
  archive.pipe(reader as unknown as NodeJS.WritableStream);
  await done;
  return found;
}

/** Paths this process has open. */
function openFiles(): string[] {
  const paths: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      paths.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed while listed
    }
  }
  return paths;
}

function blobFile(dir: string, bytes: Buffer): { digest: string; file: string } {
  const digest = digestOf(bytes);
  const file = join(dir, hexOf(digest));
  writeFileSync(file, bytes);
  return { digest, file };
}

describe('imageArchive', () => {
  it('names every layer in manifest.json and holds the config and the layers the engine lacks, byte for byte', async () => {
    const dir = scratchDir('flotilla-archive-');
    const config = Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}');
    const configDigest = digestOf(config);
    const held = digestOf(Buffer.from('a layer the engine has'));
    const lacking = blobFile(dir, randomBytes(300_000));
    const small = blobFile(dir, Buffer.from('tiny'));

    const found = await entries(
      imageArchive({
        configDigest,
        config,
        repoTags: ['127.0.0.1:5000/team/web:v2'],
        layers: [{ digest: held }, lacking, small],
      }),
    );

    const manifest = JSON.parse(found.get('manifest.json')?.toString() ?? 'null') as unknown;
    expect(manifest).toEqual([
      {
        Config: `${hexOf(configDigest)}.json`,
        RepoTags: ['127.0.0.1:5000/team/web:v2'],
        Layers: [`${hexOf(held)}.layer`, `${hexOf(lacking.digest)}.layer`, `${hexOf(small.digest)}.layer`],
      },
    ]);
    expect(found.get(`${hexOf(configDigest)}.json`)).toEqual(config);
    expect(digestOf(found.get(`${hexOf(lacking.digest)}.layer`) ?? Buffer.alloc(0))).toBe(lacking.digest);
    expect(found.get(`${hexOf(small.digest)}.layer`)?.toString()).toBe('tiny');
    expect(found.has(`${hexOf(held)}.layer`)).toBe(false);
    expect(found.size).toBe(4);
  });

  it('holds a layer listed twice once, named twice', async () => {
    const dir = scratchDir('flotilla-archive-');
    const config = Buffer.from('{}');
    const empty = blobFile(dir, Buffer.from('an empty layer'));
    const found = await entries(imageArchive({ configDigest: digestOf(config), config, repoTags: [], layers: [empty, empty] }));
    const manifest = JSON.parse(found.get('manifest.json')?.toString() ?? '[]') as { Layers: string[]; RepoTags: string[] }[];
    expect(manifest[0]?.Layers).toEqual([`${hexOf(empty.digest)}.layer`, `${hexOf(empty.digest)}.layer`]);
    expect(manifest[0]?.RepoTags).toEqual([]);
    expect(found.size).toBe(3);
  });

  it('fails its reader when a layer file is missing from the store, saying which', async () => {
    const dir = scratchDir('flotilla-archive-');
    const config = Buffer.from('{}');
    const gone = { digest: digestOf(Buffer.from('x')), file: join(dir, 'not-there') };
    await expect(entries(imageArchive({ configDigest: digestOf(config), config, repoTags: [], layers: [gone] }))).rejects.toThrow(
      /ENOENT.*not-there/,
    );
  });

  it('closes the layer file it was reading when its reader stops early', async () => {
    const dir = scratchDir('flotilla-archive-');
    const config = Buffer.from('{}');
    const big = blobFile(dir, randomBytes(8 * 1024 * 1024));
    const archive = imageArchive({ configDigest: digestOf(config), config, repoTags: [], layers: [big] });
    // Read a little, so the layer file is open and the archive is held back by its reader.
    await new Promise<void>((resolve) => archive.once('readable', () => resolve()));
    archive.read();
    await waitFor('the layer file to be opened', () => openFiles().includes(big.file));

    archive.destroy();

    await waitFor('the layer file to be closed', () => !openFiles().includes(big.file));
  });
});

describe('repoTagsFor', () => {
  it('tags an image by its reference, :latest when it names no tag', () => {
    expect(repoTagsFor('127.0.0.1:5000/team/web:v2')).toEqual(['127.0.0.1:5000/team/web:v2']);
    expect(repoTagsFor('127.0.0.1:5000/team/web')).toEqual(['127.0.0.1:5000/team/web:latest']);
    expect(repoTagsFor('docker.io/library/busybox:1.36')).toEqual(['busybox:1.36']);
  });

  it('gives a reference by digest, with or without a tag beside it, only its keep tag: the repository and the digest', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(repoTagsFor(`127.0.0.1:5000/team/web@${digest}`)).toEqual([`127.0.0.1:5000/team/web:flotilla-sha256-${'a'.repeat(64)}`]);
    expect(repoTagsFor(`127.0.0.1:5000/team/web:v2@${digest}`)).toEqual([`127.0.0.1:5000/team/web:flotilla-sha256-${'a'.repeat(64)}`]);
    expect(repoTagsFor(`docker.io/library/busybox@${digest}`)).toEqual([`busybox:flotilla-sha256-${'a'.repeat(64)}`]);
  });

  it('gives no tag to a digest too long to make one', () => {
    expect(repoTagsFor(`127.0.0.1:5000/team/web@sha512:${'b'.repeat(128)}`)).toEqual([]);
  });
});
