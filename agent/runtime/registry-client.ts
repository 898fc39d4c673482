/**
 * Reads an image's download size from its registry, before pulling, so the
 * agent can refuse an update that would fill the device's disk.
 *
 * Invariants:
 * - Only manifests are read (a few KiB each): one request for a plain
 *   manifest, two for a manifest list / OCI index, plus at most one
 *   challenge round trip and one token request. No blob is ever downloaded.
 * - The size is an upper bound on what a pull downloads: layers the engine
 *   already has are skipped by the pull but still counted here.
 * - Every failure leaves this file as a `RegistryError` whose message names
 *   the image; the caller's abort leaves as the caller's `signal.reason`
 *   (as with `fetch`), so "cancelled" stays distinguishable from "failed".
 * - Responses are read with a byte cap: a misbehaving registry cannot make
 *   a 512 MB device buffer an unbounded body.
 *
 * The requests, credentials and error wording are the registry session's
 * (images/registry-session.ts), which the agent's own image download shares.
 */

import type { HttpGet } from '../http-get.js';
import { type Descriptor, deadline, type ManifestBody, type RegistryAuthInput, RegistrySession } from '../images/registry-session.js';

export {
  isRegistryError,
  type ManifestLocation,
  MEDIA_TYPES,
  manifestLocation,
  parseChallenge,
  type RegistryAuthInput,
  RegistryError,
  type RegistryErrorCode,
} from '../images/registry-session.js';

export interface Platform {
  os: string;
  architecture: string;
}

export interface ImageDownloadSizeOptions {
  signal?: AbortSignal;
  get?: HttpGet;
  /** Which entry of a manifest list / OCI index to measure. Default: linux and this machine's architecture. */
  platform?: Platform;
  /** For the whole operation (all requests). Default 15 s. */
  timeoutMs?: number;
}

export const DEFAULT_REGISTRY_TIMEOUT_MS = 15_000;

/** The architecture names Docker uses in manifest lists, for Node's `process.arch`. */
const DOCKER_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

export function localPlatform(): Platform {
  return { os: 'linux', architecture: DOCKER_ARCH[process.arch] ?? process.arch };
}

/**
 * The bytes a pull of `image` downloads at most: the sizes of its layers
 * plus its config blob, from the registry's manifest (for a manifest list,
 * the entry for `options.platform`).
 */
export async function imageDownloadSize(
  image: string,
  auth: RegistryAuthInput | undefined,
  options: ImageDownloadSizeOptions = {},
): Promise<number> {
  const session = new RegistrySession(image, auth, options.get ? { get: options.get } : {});
  const signal = deadline(options.signal, options.timeoutMs ?? DEFAULT_REGISTRY_TIMEOUT_MS);
  const { body } = await platformManifest(session, options.platform ?? localPlatform(), signal);
  return sumSizes(body, session);
}

/**
 * The manifest of `session`'s image for `platform`: the one its reference names, or, for a
 * manifest list / OCI index, the entry for the platform's OS and architecture. RegistryError
 * `not_found` naming what the list offers when the platform is missing.
 */
export async function platformManifest(
  session: RegistrySession,
  platform: Platform,
  signal: AbortSignal,
): Promise<{ body: ManifestBody; digest: string }> {
  let manifest = await session.manifest(session.location.reference, signal);
  // An index may in principle point at another index; two hops is plenty.
  for (let hop = 0; Array.isArray(manifest.body.manifests) && hop < 2; hop++) {
    const entries = manifest.body.manifests;
    const entry = pickPlatform(entries, platform);
    if (!entry) {
      const available = entries
        .map((m) => `${m.platform?.os ?? '?'}/${m.platform?.architecture ?? '?'}`)
        .filter((p) => p !== 'unknown/unknown');
      throw session.fail(
        'not_found',
        `no manifest for ${platform.os}/${platform.architecture} in the manifest list (available: ${available.join(', ') || 'none'})`,
      );
    }
    manifest = await session.manifest(entry.digest, signal);
  }
  return manifest;
}

/** First entry for the OS and architecture; the variant (arm v6/v7…) is ignored on purpose. */
function pickPlatform(entries: Descriptor[], platform: Platform): (Descriptor & { digest: string }) | undefined {
  return entries.find(
    (m): m is Descriptor & { digest: string } =>
      typeof m.digest === 'string' && m.platform?.os === platform.os && m.platform?.architecture === platform.architecture,
  );
}

function sumSizes(manifest: ManifestBody, session: RegistrySession): number {
  if (manifest.schemaVersion === 1) throw session.fail('bad_response', 'the registry served a schema 1 manifest, which carries no sizes');
  if (!manifest.config || !Array.isArray(manifest.layers)) {
    throw session.fail('bad_response', 'the manifest has no config or layers');
  }
  let total = 0;
  for (const blob of [manifest.config, ...manifest.layers]) {
    const size = blob?.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw session.fail('bad_response', `the manifest lists a blob without a valid size (${blob?.digest ?? 'no digest'})`);
    }
    total += size;
  }
  return total;
}
