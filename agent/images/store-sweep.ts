/**
 * Clears the content store (blob-store.ts) of what nothing wants any more:
 * the blobs of an image a past process began to download and the desired
 * state has since dropped, which no fetch would ever finish or remove.
 *
 * The store names files by digest alone, so what to keep is learnt from the
 * registry: the blobs of each wanted image the engine lacks (its manifest,
 * a few KiB, read only when the store holds anything at all). An image the
 * engine holds needs nothing stored. When a wanted image's manifest cannot
 * be read (the link is down), nothing is removed: a partial download is
 * worth more than the disk it takes until the next sweep.
 */
import type { RegistryAuth } from '../../shared/index.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import type { BlobStore, SweepResult } from './blob-store.js';
import type { ResolvedImage } from './types.js';

export interface WantedImage {
  image: string;
  auth?: RegistryAuth;
}

export interface SweepDeps {
  store: BlobStore;
  engine: Pick<ContainerRuntime, 'hasImage'>;
  resolve: (image: string, auth: RegistryAuth | undefined) => Promise<ResolvedImage>;
}

export type SweepOutcome =
  | { swept: SweepResult }
  /** Nothing was removed: why. */
  | { skipped: string };

export async function sweepStore(wanted: readonly WantedImage[], deps: SweepDeps): Promise<SweepOutcome> {
  if ((await deps.store.bytesStored()) === 0) return { skipped: 'the store is empty' };
  const keep = new Set<string>();
  const seen = new Set<string>();
  for (const { image, auth } of wanted) {
    if (seen.has(image)) continue;
    seen.add(image);
    if (await deps.engine.hasImage(image)) continue;
    let resolved: ResolvedImage;
    try {
      resolved = await deps.resolve(image, auth);
    } catch (err) {
      return { skipped: `cannot read the manifest of ${image}, which is still wanted: ${(err as Error).message}` };
    }
    for (const blob of [resolved.config, ...resolved.layers]) keep.add(blob.digest);
  }
  return { swept: await deps.store.sweep(keep) };
}
