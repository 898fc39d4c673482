/**
 * Pre-flight disk check before pulling: the image's download size (from its
 * registry manifest) plus a reserve must fit in the free space under
 * Docker's data root. Sizes are cached per image reference: a manifest is
 * fetched once, not every tick.
 *
 * An image the agent downloads itself passes through its image store first
 * (agent/images/): its layers are stored whole, then loaded into the engine,
 * then dropped from the store. So the store's disk must hold them too, and
 * where the store and the engine share a file system (the usual device, one
 * SD card) the image needs its size twice until it is loaded.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { DesiredApp } from '../../shared/index.js';
import { diskCheck, type FreeSpace, freeBytesWithSource } from '../runtime/disk.js';
import { imageDownloadSize, isRegistryError } from '../runtime/registry-client.js';

export class DiskPreflight {
  private readonly sizes = new Map<string, number>();

  constructor(
    private readonly reserveBytes: number,
    private readonly log: Logger,
    /** The agent's image store, when the agent downloads images itself. */
    private readonly storeDir?: string,
  ) {}

  /** Images that must not be pulled now, with the reason; images whose size cannot be read are let through (the pull will say why). */
  async shortfalls(apps: readonly DesiredApp[], missing: ReadonlySet<string>, dataRoot: string | undefined): Promise<Map<string, string>> {
    const short = new Map<string, string>();
    if (missing.size === 0 || dataRoot === undefined) return short;
    const free = await freeBytesWithSource(dataRoot);
    const store = this.storeDir !== undefined ? await this.storeSpace(this.storeDir, free) : undefined;
    for (const app of apps) {
      const viaStore = store !== undefined && app.update?.pull !== 'engine';
      for (const spec of app.containers) {
        if (!missing.has(spec.image) || short.has(spec.image)) continue;
        const size = await this.size(spec.image, spec.auth);
        if (size === undefined) continue;
        const problem = viaStore ? this.storeShortfall(size, free, store) : this.check(size, free);
        if (problem) short.set(spec.image, problem);
      }
    }
    return short;
  }

  private check(needed: number, free: FreeSpace): string | undefined {
    const check = diskCheck({ needed, reserve: this.reserveBytes, free: free.bytes, path: free.measuredAt });
    return check.ok ? undefined : check.message;
  }

  /** Through the store: twice the size on one shared file system; else the size on each. */
  private storeShortfall(size: number, engine: FreeSpace, store: { free: FreeSpace; shared: boolean }): string | undefined {
    const why = `the agent's image store (${this.storeDir}) holds its layers until the engine has loaded them`;
    if (store.shared) {
      const problem = this.check(2 * size, engine);
      return problem && `${problem}; ${why}, on the same disk`;
    }
    const problem = this.check(size, engine) ?? this.check(size, store.free);
    return problem && `${problem}; ${why}`;
  }

  /** What is free where the store is, and whether that is the engine's file system. */
  private async storeSpace(dir: string, engine: FreeSpace): Promise<{ free: FreeSpace; shared: boolean }> {
    const free = await freeBytesWithSource(dir);
    const [a, b] = await Promise.all([stat(free.measuredAt), stat(engine.measuredAt)]);
    return { free, shared: a.dev === b.dev };
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
