/**
 * What an image is made of, as its registry describes it for this device:
 * the platform manifest (picked from a manifest list / OCI index by OS and
 * architecture, as the disk check does), its digest, and its config and
 * layer descriptors, the blobs a download fetches.
 *
 * Invariants:
 * - Every digest handed on is `sha256:<64 hex>` and every size a safe
 *   integer: digests name files in the content store and sizes bound what a
 *   download accepts, so anything else is refused here as `bad_response`.
 * - Failures leave as `FetchError` with the registry error's code and
 *   message; the caller's abort leaves as its `signal.reason`.
 * - Only manifests are read (a few KiB), within `timeoutMs` for the whole.
 */
import type { HttpGet } from '../http-get.js';
import { DEFAULT_REGISTRY_TIMEOUT_MS, localPlatform, type Platform, platformManifest } from '../runtime/registry-client.js';
import { type Descriptor, deadline, isRegistryError, type RegistryAuthInput, RegistrySession, SHA256_DIGEST } from './registry-session.js';
import { type BlobDescriptor, FetchError, type ResolvedImage } from './types.js';

export interface ResolveImageOptions {
  /** The session to read through, so the blobs' download reuses its credential. Default: a new one. */
  session?: RegistrySession;
  get?: HttpGet;
  /** Default: linux and this machine's architecture. */
  platform?: Platform;
  signal?: AbortSignal;
  /** For all the manifest requests together. Default 15 s. */
  timeoutMs?: number;
}

export async function resolveImage(
  image: string,
  auth: RegistryAuthInput | undefined,
  options: ResolveImageOptions = {},
): Promise<ResolvedImage> {
  const session = options.session ?? new RegistrySession(image, auth, options.get ? { get: options.get } : {});
  const signal = deadline(options.signal, options.timeoutMs ?? DEFAULT_REGISTRY_TIMEOUT_MS);
  try {
    const { body, digest } = await platformManifest(session, options.platform ?? localPlatform(), signal);
    const bad = (detail: string) => new FetchError('bad_response', image, `cannot read the manifest of ${image}: ${detail}`);
    if (body.schemaVersion === 1) throw bad('the registry served a schema 1 manifest, which carries no digests of its layers');
    if (!body.config || !Array.isArray(body.layers)) throw bad('the manifest has no config or layers');
    const blob = (descriptor: Descriptor | undefined, what: string): BlobDescriptor => {
      const { digest: blobDigest, size, mediaType } = descriptor ?? {};
      if (typeof blobDigest !== 'string' || !SHA256_DIGEST.test(blobDigest)) {
        throw bad(`the ${what} has the digest ${JSON.stringify(blobDigest ?? null)}, not sha256:<64 hex digits>`);
      }
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`the ${what} ${blobDigest} has no valid size`);
      return typeof mediaType === 'string' ? { digest: blobDigest, size, mediaType } : { digest: blobDigest, size };
    };
    return {
      image,
      manifestDigest: digest,
      config: blob(body.config, 'config'),
      layers: body.layers.map((layer, i) => blob(layer, `layer ${i}`)),
    };
  } catch (err) {
    throw asFetchError(err, image);
  }
}

/** A RegistryError as the download reports it (same code and message); anything else as it is. */
export function asFetchError(err: unknown, image: string): unknown {
  if (!isRegistryError(err)) return err;
  return new FetchError(err.code, image, err.message, { cause: err });
}
