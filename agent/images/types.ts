/**
 * The seams of the agent's own image download (docs/image-downloads.md):
 * registry → content store (resolve-image.ts, download-blobs.ts) → engine
 * (engine-load.ts), driven one image at a time by fetch-image.ts and
 * scheduled, paced and reported by image-puller.ts.
 */
import type { Readable } from 'node:stream';

/** A blob as a manifest names it. */
export interface BlobDescriptor {
  /** `sha256:<64 hex>`: the only algorithm accepted. */
  digest: string;
  /** Its size in bytes, as the manifest says (checked on receipt). */
  size: number;
  mediaType?: string;
}

/** One image as its registry describes it for this device's platform. */
export interface ResolvedImage {
  /** The reference as the spec wrote it. */
  image: string;
  /** The platform manifest's digest (`sha256:…`): what `image@digest` would pull. */
  manifestDigest: string;
  /** The image config blob (its digest is the engine's image ID). */
  config: BlobDescriptor;
  /** Layers, base first, compressed as the registry serves them. */
  layers: BlobDescriptor[];
}

/** Holds back bytes while the link or the budget says so. */
export interface Pacer {
  /**
   * Resolves when `bytes` more may be received: at once when neither the rate limit nor the daily
   * budget holds them back. Rejects with `signal.reason` when aborted while waiting.
   */
  take(bytes: number, signal: AbortSignal): Promise<void>;
}

/** What a fetch reports as it goes; image-puller.ts turns these into the state report and events. */
export type FetchEvent =
  /** The manifest and config are read: `total` bytes of `blobs` blobs to download; `reusedBytes` of layers the engine has. */
  | { type: 'planned'; total: number; reusedBytes: number; blobs: number; storedBytes: number }
  /** A blob's download continues from `offset`, stored earlier (a break, or a previous agent process). */
  | { type: 'resumed'; digest: string; offset: number }
  /** `bytes` more were received (and stored). */
  | { type: 'received'; bytes: number }
  /** `bytes` already received must be fetched again: `reason` says why (range ignored, digest mismatch). */
  | { type: 'resent'; digest: string; bytes: number; reason: string }
  /** A request failed and will be retried from what is stored after `delayMs`. */
  | { type: 'retry'; digest: string; attempt: number; delayMs: number; error: string }
  /** The registry ignores Range for this blob: it is downloaded whole from here on. */
  | { type: 'whole-blob'; digest: string }
  /** Every blob is stored and verified; the engine is loading the image. */
  | { type: 'loading' };

export type FetchErrorCode =
  /** The registry refused the credentials, or wanted some and none were given. */
  | 'unauthorized'
  /** No such repository, tag or digest, or no manifest for this platform. */
  | 'not_found'
  /** The registry could not be reached, after every retry. */
  | 'unreachable'
  /** The registry cannot serve this image resumably (Range ignored and whole-blob attempts broke): the engine's pull may do better. */
  | 'not_resumable'
  /** The registry answered with something unusable (bad manifest, wrong size, a blob whose digest never matched). */
  | 'bad_response'
  /** The content store's disk is full or unwritable. */
  | 'store_failed'
  /** The engine refused the image archive. */
  | 'load_failed';

export class FetchError extends Error {
  override readonly name = 'FetchError';
  constructor(
    readonly code: FetchErrorCode,
    readonly image: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isFetchError(err: unknown): err is FetchError {
  return err instanceof FetchError;
}

/** What the engine side offers the fetch (engine-load.ts over the Docker Engine). */
export interface EngineImages {
  /** The chain IDs (`sha256:…`) of every layer stack the engine holds: a layer whose chain is here is not downloaded. */
  layerChains(): Promise<Set<string>>;
  /**
   * Loads a Docker image archive (`docker save` format) and resolves once the engine holds the
   * image; a layer the engine already has may be left out of the archive.
   */
  load(archive: Readable, signal: AbortSignal): Promise<void>;
}
