/**
 * Layer chain IDs, as the Docker Engine computes them, and the layer
 * digests an image config names.
 *
 * The engine keys a layer not by its own content (its DiffID, the sha256 of
 * the uncompressed tar) but by the stack it sits on: the same tar on top of
 * a different parent is a different layer. So "does the engine hold this
 * layer?" is asked by chain ID, the prefix of the image's stack ending at it
 * (image spec, config.md "Layer ChainID"):
 *
 *   ChainID(L0) = DiffID(L0)
 *   ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))
 *
 * with both digests written in full (`sha256:<hex>`), and the result too.
 */
import { createHash } from 'node:crypto';
import { SHA256_DIGEST } from './registry-session.js';
import { FetchError } from './types.js';

/** A config blob is a few KiB; this bound keeps a registry's lie about its size from filling memory. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** The chain ID of every prefix of a stack of layers, base first: element i is the chain ending at layer i. */
export function chainIds(diffIds: readonly string[]): string[] {
  const chains: string[] = [];
  let previous: string | undefined;
  for (const diffId of diffIds) {
    const chain = previous === undefined ? diffId : `sha256:${createHash('sha256').update(`${previous} ${diffId}`).digest('hex')}`;
    chains.push(chain);
    previous = chain;
  }
  return chains;
}

/**
 * The DiffIDs an image config lists (`rootfs.diff_ids`), base first. A config that is not JSON,
 * is not of a layered root filesystem, or names anything but sha256 digests is a registry's
 * bad answer: FetchError('bad_response').
 */
export function configDiffIds(image: string, config: Buffer): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(config.toString('utf8'));
  } catch (err) {
    throw new FetchError('bad_response', image, `the image config of ${image} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const rootfs = (parsed as { rootfs?: { type?: unknown; diff_ids?: unknown } } | null)?.rootfs;
  if (rootfs?.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    throw new FetchError('bad_response', image, `the image config of ${image} has no rootfs of type "layers" with diff_ids`);
  }
  const diffIds = rootfs.diff_ids as unknown[];
  const bad = diffIds.find((id) => typeof id !== 'string' || !SHA256_DIGEST.test(id));
  if (bad !== undefined) {
    throw new FetchError(
      'bad_response',
      image,
      `the image config of ${image} lists a layer digest that is not sha256:<64 hex>: ${JSON.stringify(bad)}`,
    );
  }
  return diffIds as string[];
}
