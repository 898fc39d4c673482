/**
 * One image's whole fetch by the agent: registry → content store → engine.
 *
 *   resolve the manifest for this device's platform
 *   → download the config blob, read its layers' DiffIDs, make their chain IDs
 *   → leave out every layer whose chain the engine holds (`reusedBytes`)
 *   → `planned`, download the rest (resumably, paced), `loading`
 *   → stream a docker save-format archive from the store into the engine's load
 *   → drop the image's blobs from the store (the engine holds them now)
 *   → for a reference by digest, record its alias (image-aliases.ts).
 *
 * Invariants:
 * - Every failure leaves as a `FetchError` (types.ts) naming the image; the
 *   engine refusing the archive is `load_failed` with the engine's words.
 * - An abort rejects with `signal.reason` and leaves what is stored, so the
 *   next call (or the next agent process) continues from it.
 * - Blobs leave the store only after the engine said it holds the image: a
 *   failed load keeps them for the next attempt.
 * - `received` events for the config blob come before `planned` (its
 *   DiffIDs are what `planned` is computed from); `planned.total` counts
 *   the config blob, and `planned.storedBytes` what the store held of the
 *   planned blobs before this call.
 */
import { readFile } from 'node:fs/promises';
import type { HttpGet } from '../http-get.js';
import { parseImageReference } from '../runtime/docker-runtime.js';
import type { Platform } from '../runtime/registry-client.js';
import type { BlobStore } from './blob-store.js';
import { chainIds, configDiffIds, MAX_CONFIG_BYTES } from './chain-id.js';
import { type DownloadBlobsOptions, downloadBlobs, type RetryPolicy } from './download-blobs.js';
import { isEngineLoadError } from './engine-load.js';
import type { ImageAliases } from './image-aliases.js';
import { type ArchiveLayer, imageArchive, repoTagsFor } from './image-archive.js';
import { type RegistryAuthInput, RegistrySession } from './registry-session.js';
import { resolveImage } from './resolve-image.js';
import { type BlobDescriptor, type EngineImages, FetchError, type FetchEvent, type Pacer } from './types.js';

export interface FetchImageDeps {
  engine: EngineImages;
  store: BlobStore;
  /** Where a reference by digest is recorded once loaded (the engine cannot carry it). */
  aliases: ImageAliases;
  /** The registry's HTTP client. Default: node:http/https (agent/http-get.ts). */
  get?: HttpGet;
}

export interface FetchImageOptions {
  signal: AbortSignal;
  /** The downlink limit and the daily budget. Default: none. */
  pace?: Pacer;
  onEvent?: (event: FetchEvent) => void;
  /** A blob request that receives nothing for this long is retried. Default 30 s (download-blobs.ts). */
  stallTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Default: this device's (linux and its architecture). */
  platform?: Platform;
  logger?: FetchLogger;
}

/** The slice of a pino logger this file uses. */
export interface FetchLogger {
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

const silent: FetchLogger = { info() {}, debug() {} };

export interface FetchedImage {
  image: string;
  /** The engine's image ID: the config blob's digest. */
  imageId: string;
  /** The platform manifest's digest. */
  manifestDigest: string;
  /** Bytes of the blobs the engine lacked (the config included): what `planned` said. */
  total: number;
  /** Compressed bytes of the layers the engine already held. */
  reusedBytes: number;
  /** Bytes received from the registry by this call, resent ones included. */
  received: number;
  /** Bytes received by this call and then dropped (range ignored, digest mismatch). */
  resent: number;
}

export async function fetchImage(
  image: string,
  auth: RegistryAuthInput | undefined,
  deps: FetchImageDeps,
  options: FetchImageOptions,
): Promise<FetchedImage> {
  const { signal } = options;
  const log = options.logger ?? silent;
  const session = new RegistrySession(image, auth, deps.get ? { get: deps.get } : {});
  const emit = options.onEvent ?? (() => {});
  const download: DownloadBlobsOptions = {
    signal,
    onEvent: emit,
    ...(options.pace ? { pace: options.pace } : {}),
    ...(options.stallTimeoutMs !== undefined ? { stallTimeoutMs: options.stallTimeoutMs } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
  };
  const resolved = await resolveImage(image, auth, { session, signal, ...(options.platform ? { platform: options.platform } : {}) });
  const { config: configBlob, layers } = resolved;
  if (configBlob.size > MAX_CONFIG_BYTES) {
    throw new FetchError(
      'bad_response',
      image,
      `the image config of ${image} is said to be ${configBlob.size} bytes; a config is at most ${MAX_CONFIG_BYTES}`,
    );
  }

  const configStored = await storedOf(deps.store, configBlob, image);
  const configRun = await downloadBlobs(session, deps.store, [configBlob], download);
  const config = await inStore(image, deps.store.dir, () => readFile(deps.store.path(configBlob.digest)));
  const diffIds = configDiffIds(image, config);
  if (diffIds.length !== layers.length) {
    throw new FetchError(
      'bad_response',
      image,
      `the manifest of ${image} lists ${layers.length} layers and its config ${diffIds.length}: they must be the same layers`,
    );
  }

  const held = await engineCall(image, 'ask the engine which layers it holds', () => deps.engine.layerChains());
  const chains = chainIds(diffIds);
  const reused = layers.filter((_, i) => held.has(chains[i] as string));
  const needed = uniqueBlobs(layers.filter((_, i) => !held.has(chains[i] as string)));
  let layersStored = 0;
  for (const blob of needed) layersStored += await storedOf(deps.store, blob, image);
  const total = configBlob.size + sum(needed);
  const reusedBytes = sum(reused);
  emit({ type: 'planned', total, reusedBytes, blobs: needed.length + 1, storedBytes: configStored + layersStored });
  log.debug({ image, total, reusedBytes, layers: layers.length, reusedLayers: reused.length }, 'image download planned');

  const layerRun = await downloadBlobs(session, deps.store, needed, download);
  signal.throwIfAborted();
  emit({ type: 'loading' });

  const archiveLayers: ArchiveLayer[] = layers.map((blob, i) =>
    held.has(chains[i] as string) ? { digest: blob.digest } : { digest: blob.digest, file: deps.store.path(blob.digest) },
  );
  const archive = imageArchive({ configDigest: configBlob.digest, config, repoTags: repoTagsFor(image), layers: archiveLayers });
  try {
    await deps.engine.load(archive, signal);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (isEngineLoadError(err)) {
      throw new FetchError('load_failed', image, `the engine refused the image ${image}: ${err.engineMessage}`, { cause: err });
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string') {
      throw new FetchError('store_failed', image, `cannot read the blobs of ${image} from ${deps.store.dir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    throw new FetchError('load_failed', image, `cannot load the image ${image} into the engine: ${(err as Error).message}`, { cause: err });
  }

  // The engine holds every layer now; the store's copies would only take the device's disk.
  for (const blob of uniqueBlobs([configBlob, ...layers])) {
    await inStore(image, deps.store.dir, () => deps.store.remove(blob.digest));
  }
  if (parseImageReference(image).digest !== undefined) {
    try {
      await deps.aliases.set(image, configBlob.digest);
    } catch (err) {
      throw new FetchError(
        'store_failed',
        image,
        `loaded ${image} as ${configBlob.digest}, but cannot record that: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
  const fetched: FetchedImage = {
    image,
    imageId: configBlob.digest,
    manifestDigest: resolved.manifestDigest,
    total,
    reusedBytes,
    received: configRun.received + layerRun.received,
    resent: configRun.resent + layerRun.resent,
  };
  log.info(
    { image, imageId: fetched.imageId, received: fetched.received, reusedBytes, resent: fetched.resent },
    'image fetched and loaded',
  );
  return fetched;
}

/** Bytes the store holds of a blob: all of it when complete, else its partial file's. */
async function storedOf(store: BlobStore, blob: BlobDescriptor, image: string): Promise<number> {
  return inStore(image, store.dir, async () => ((await store.has(blob.digest)) ? blob.size : await store.partialSize(blob.digest)));
}

/** Each blob once: an image may list one layer blob twice. */
function uniqueBlobs(blobs: readonly BlobDescriptor[]): BlobDescriptor[] {
  const byDigest = new Map<string, BlobDescriptor>();
  for (const blob of blobs) if (!byDigest.has(blob.digest)) byDigest.set(blob.digest, blob);
  return [...byDigest.values()];
}

function sum(blobs: readonly BlobDescriptor[]): number {
  return blobs.reduce((total, blob) => total + blob.size, 0);
}

/** A content-store operation; its failure (disk full, unreadable) is `store_failed`. */
async function inStore<T>(image: string, dir: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new FetchError('store_failed', image, `cannot use the content store of ${image} in ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** An engine query the fetch needs; the engine failing it makes the image unloadable for now: `load_failed`. */
async function engineCall<T>(image: string, what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new FetchError('load_failed', image, `cannot ${what} for ${image}: ${(err as Error).message}`, { cause: err });
  }
}
