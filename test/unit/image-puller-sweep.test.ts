/**
 * Sweeping the image store (agent/images/store-sweep.ts) on a real content
 * store in a temp dir, the registry's answer and the engine faked: the blobs
 * of a wanted image the engine lacks stay, complete or partial; the rest go;
 * nothing goes while a wanted image's manifest cannot be read; an empty
 * store asks the registry nothing.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlobStore } from '../../agent/images/blob-store.js';
import { sweepStore } from '../../agent/images/store-sweep.js';
import { FetchError, type ResolvedImage } from '../../agent/images/types.js';
import { scratchDir } from '../support/scratch.js';

const digestOf = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const blobs = { config: Buffer.from('{"config":1}'), layer: Buffer.from('layer bytes'), old: Buffer.from('an image no longer wanted') };

async function stored(store: BlobStore, data: Buffer, { partial = false } = {}): Promise<string> {
  const digest = digestOf(data);
  const file = await store.openPartial(digest, 0);
  await file.write(partial ? data.subarray(0, 4) : data);
  await file.close();
  if (!partial) await store.complete(digest);
  return digest;
}

const resolved = (image: string, config: string, layers: string[]): ResolvedImage => ({
  image,
  manifestDigest: `sha256:${'0'.repeat(64)}`,
  config: { digest: config, size: 1 },
  layers: layers.map((digest) => ({ digest, size: 1 })),
});

describe('sweepStore', () => {
  it('keeps the blobs of wanted images the engine lacks, partial ones too, and removes the rest', async () => {
    const store = await BlobStore.open(scratchDir('flotilla-store-'));
    const config = await stored(store, blobs.config);
    const layer = await stored(store, blobs.layer, { partial: true });
    const old = await stored(store, blobs.old);
    const asked: string[] = [];
    const outcome = await sweepStore([{ image: 'reg/web:2' }, { image: 'reg/present:1' }, { image: 'reg/web:2' }], {
      store,
      engine: { hasImage: async (image) => image === 'reg/present:1' },
      resolve: async (image) => {
        asked.push(image);
        return resolved(image, config, [layer]);
      },
    });
    expect(outcome).toEqual({ swept: { files: 1, bytes: blobs.old.length } });
    expect(asked).toEqual(['reg/web:2']);
    expect(await store.has(config)).toBe(true);
    expect(await store.partialSize(layer)).toBe(4);
    expect(await store.has(old)).toBe(false);
  });

  it('removes nothing while a wanted image cannot be resolved (the link may be down)', async () => {
    const store = await BlobStore.open(scratchDir('flotilla-store-'));
    const old = await stored(store, blobs.old);
    const outcome = await sweepStore([{ image: 'reg/web:2' }], {
      store,
      engine: { hasImage: async () => false },
      resolve: async (image) => {
        throw new FetchError('unreachable', image, 'connect ECONNREFUSED 10.0.0.9:5000');
      },
    });
    expect(outcome).toEqual({
      skipped: 'cannot read the manifest of reg/web:2, which is still wanted: connect ECONNREFUSED 10.0.0.9:5000',
    });
    expect(await store.has(old)).toBe(true);
  });

  it('asks the registry nothing when the store is empty', async () => {
    const store = await BlobStore.open(scratchDir('flotilla-store-'));
    const outcome = await sweepStore([{ image: 'reg/web:2' }], {
      store,
      engine: { hasImage: async () => false },
      resolve: async () => {
        throw new Error('the registry was asked');
      },
    });
    expect(outcome).toEqual({ skipped: 'the store is empty' });
  });
});
