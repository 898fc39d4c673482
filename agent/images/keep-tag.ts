/**
 * The tag that keeps an image the agent loaded for a digest reference (`repo@sha256:…`) in the
 * engine until the agent removes it.
 *
 * An archive cannot carry a digest (image-archive.ts). Untagged, such an image is what
 * `docker image prune` deletes (the engine counts an image without a tag as dangling, whatever
 * digests it holds), and it does so whenever no container uses the image: a prefetched image
 * would be gone before its rollout stage came. So the load tags it
 * `repo:flotilla-sha256-<hex>` instead.
 *
 * Invariants:
 * - The tag is in the reference's own repository and named after the digest the reference
 *   holds (the manifest's, not the image ID), so it follows from the reference alone: the
 *   runtime removes it with the reference (docker-runtime.ts removeImage), and the engine
 *   deletes an image with its last tag.
 * - It keeps the image, nothing more: the engine still cannot resolve the digest reference, so
 *   lookups go through the image aliases (image-aliases.ts).
 * - A digest that would not make a valid tag (longer than 128 characters) gets none, and its
 *   image is loaded untagged.
 */
import type { ImageReference } from '../runtime/docker-runtime.js';

const KEEP_PREFIX = 'flotilla-';

/** What the engine accepts as a tag. */
const TAG = /^[\w][\w.-]{0,127}$/;

/** `name:flotilla-sha256-<hex>` for a reference by digest; undefined for one by tag alone. */
export function keepTag(reference: ImageReference): string | undefined {
  if (reference.digest === undefined) return undefined;
  const tag = `${KEEP_PREFIX}${reference.digest.replace(':', '-')}`;
  return TAG.test(tag) ? `${reference.name}:${tag}` : undefined;
}
