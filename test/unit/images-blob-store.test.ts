/** The content store on a real temp dir: partial files, completion by digest, sweep, the per-digest lock. */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BlobStore, DigestMismatch } from '../../agent/images/blob-store.js';
import { scratchDir } from '../support/scratch.js';

function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function writePartial(store: BlobStore, digest: string, from: number, data: Buffer): Promise<number> {
  const file = await store.openPartial(digest, from);
  await file.write(data);
  const size = file.size;
  await file.close();
  return size;
}

describe('BlobStore', () => {
  it('continues a partial file across store objects (an agent restart) and completes it once the bytes match the digest', async () => {
    const dir = scratchDir('flotilla-store-');
    const data = randomBytes(300_000);
    const digest = digestOf(data);

    const first = await BlobStore.open(dir);
    expect(await writePartial(first, digest, 0, data.subarray(0, 120_000))).toBe(120_000);

    const second = await BlobStore.open(dir);
    expect(await second.partialSize(digest)).toBe(120_000);
    expect(await writePartial(second, digest, 120_000, data.subarray(120_000))).toBe(300_000);
    expect(await second.has(digest)).toBe(false);

    await second.complete(digest);
    expect(await second.has(digest)).toBe(true);
    expect(await second.partialSize(digest)).toBe(0);
    expect((await readFile(second.path(digest))).equals(data)).toBe(true);
    expect(second.path(digest)).toBe(join(dir, 'blobs', 'sha256', digest.slice(7)));
  });

  it('cuts off what is stored past the offset a write continues from', async () => {
    const store = await BlobStore.open(scratchDir('flotilla-store-'));
    const data = randomBytes(1_000);
    const digest = digestOf(data);
    await writePartial(store, digest, 0, Buffer.concat([data.subarray(0, 600), Buffer.alloc(300, 0)]));
    expect(await writePartial(store, digest, 600, data.subarray(600))).toBe(1_000);
    await store.complete(digest);
    expect((await readFile(store.path(digest))).equals(data)).toBe(true);
    await expect(store.openPartial(digest, 10)).rejects.toThrow(RangeError);
  });

  it('refuses bytes that do not hash to the digest: DigestMismatch, the partial file gone, nothing complete', async () => {
    const store = await BlobStore.open(scratchDir('flotilla-store-'));
    const data = randomBytes(5_000);
    const digest = digestOf(data);
    const torn = Buffer.from(data);
    torn.fill(0, 4_000); // what a power cut can leave at a partial file's tail
    await writePartial(store, digest, 0, torn);

    const err = await store.complete(digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatch);
    expect(err).toMatchObject({ digest, actual: digestOf(torn), bytes: 5_000 });
    expect(await store.has(digest)).toBe(false);
    expect(await store.partialSize(digest)).toBe(0);
  });

  it('accepts only sha256 digests, so no digest can name a file outside the store', async () => {
    const store = await BlobStore.open(scratchDir('flotilla-store-'));
    expect(() => store.path('sha256:../../etc/passwd')).toThrow(TypeError);
    await expect(store.partialSize(`sha512:${'a'.repeat(128)}`)).rejects.toThrow('not a sha256 digest');
  });

  it('sweeps every blob and partial not kept, and any stray file, leaving kept and locked digests; counts the bytes stored', async () => {
    const dir = scratchDir('flotilla-store-');
    const store = await BlobStore.open(dir);
    const blobs = [randomBytes(1_000), randomBytes(2_000), randomBytes(3_000), randomBytes(4_000)];
    const [kept, gone, partialKept, partialGone] = blobs.map(digestOf) as [string, string, string, string];
    for (const [i, digest] of [kept, gone].entries()) {
      await writePartial(store, digest, 0, blobs[i]!);
      await store.complete(digest);
    }
    await writePartial(store, partialKept, 0, blobs[2]!.subarray(0, 500));
    await writePartial(store, partialGone, 0, blobs[3]!.subarray(0, 700));
    const locked = digestOf(randomBytes(8));
    await writePartial(store, locked, 0, Buffer.alloc(50));
    await writeFile(join(dir, 'partial', 'leftover.tmp'), 'x'.repeat(10));
    expect(await store.bytesStored()).toBe(1_000 + 2_000 + 500 + 700 + 50 + 10);

    const release = await store.lock(locked);
    const swept = await store.sweep(new Set([kept, partialKept]));
    release();

    expect(swept).toEqual({ files: 3, bytes: 2_000 + 700 + 10 });
    expect(await store.has(kept)).toBe(true);
    expect(await store.has(gone)).toBe(false);
    expect(await store.partialSize(partialKept)).toBe(500);
    expect(await store.partialSize(locked)).toBe(50);
    expect((await readdir(join(dir, 'partial'))).sort()).toEqual([`sha256-${locked.slice(7)}`, `sha256-${partialKept.slice(7)}`].sort());
    expect(await store.bytesStored()).toBe(1_000 + 500 + 50);
  });

  it('lets one writer hold a digest at a time, across store objects on the same dir', async () => {
    const dir = scratchDir('flotilla-store-');
    const a = await BlobStore.open(dir);
    const b = await BlobStore.open(dir);
    const digest = digestOf(Buffer.from('x'));
    const releaseA = await a.lock(digest);
    let bHolds = false;
    const waiting = b.lock(digest).then((release) => {
      bHolds = true;
      return release;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(bHolds).toBe(false);
    releaseA();
    const releaseB = await waiting;
    expect(bHolds).toBe(true);
    releaseB();
  });

  it('removes a blob, complete or partial', async () => {
    const store = await BlobStore.open(scratchDir('flotilla-store-'));
    const data = randomBytes(100);
    const digest = digestOf(data);
    await writePartial(store, digest, 0, data);
    await store.complete(digest);
    await writePartial(store, digest, 0, data.subarray(0, 10));
    await store.remove(digest);
    expect(await store.has(digest)).toBe(false);
    expect(await store.partialSize(digest)).toBe(0);
    expect(await store.discardPartial(digest)).toBe(0);
  });
});
