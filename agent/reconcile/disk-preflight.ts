/**
 * Pre-flight disk check before pulling: the image's download size (from its
 * registry manifest) plus a reserve must fit in the free space under
 * Docker's data root. Sizes are cached per image reference: a manifest is
 * fetched once, not every tick.
 */
import type { Logger } from 'pino';
import type { DesiredApp } from '../../shared/index.js';
import { diskCheck, freeBytesWithSource } from '../runtime/disk.js';
import { imageDownloadSize, isRegistryError } from '../runtime/registry-client.js';

export class DiskPreflight {
  private readonly sizes = new Map<string, number>();

  constructor(
    private readonly reserveBytes: number,
    private readonly log: Logger,
  ) {}

  /** Images that must not be pulled now, with the reason; images whose size cannot be read are let through (the pull will say why). */
  async shortfalls(apps: readonly DesiredApp[], missing: ReadonlySet<string>, dataRoot: string | undefined): Promise<Map<string, string>> {
    const short = new Map<string, string>();
    if (missing.size === 0 || dataRoot === undefined) return short;
    const free = await freeBytesWithSource(dataRoot);
    for (const app of apps) {
      for (const spec of app.containers) {
        if (!missing.has(spec.image) || short.has(spec.image)) continue;
        const size = await this.size(spec.image, spec.auth);
        if (size === undefined) continue;
        const check = diskCheck({ needed: size, reserve: this.reserveBytes, free: free.bytes, path: free.measuredAt });
        if (!check.ok) short.set(spec.image, check.message);
      }
    }
    return short;
  }

  private async size(image: string, auth: DesiredApp['containers'][number]['auth']): Promise<number | undefined> {
    const cached = this.sizes.get(image);
    if (cached !== undefined) return cached;
    try {
      const size = await imageDownloadSize(
        image,
        auth?.password !== undefined ? { username: auth.username, password: auth.password } : undefined,
      );
      this.sizes.set(image, size);
      return size;
    } catch (err) {
      if (!isRegistryError(err)) throw err;
      this.log.warn({ image, err: err.message }, 'cannot read the image size for the disk check; pulling without it');
      return undefined;
    }
  }
}
