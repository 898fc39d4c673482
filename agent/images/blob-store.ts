/**
 * The agent's content store for image blobs, a directory under its data dir:
 *
 *   blobs/sha256/<hex>     complete, and its sha256 checked against its name
 *   partial/sha256-<hex>   being received; its size is where a download resumes
 *
 * Invariants:
 * - A file under blobs/ was hashed from disk and matched its digest before it
 *   was renamed there (complete()), and was fsynced before the rename and
 *   its directory after: what a power cut leaves there is whole and right.
 * - Partial files are written without fsync (an SD card would pay for every
 *   chunk). After the agent is killed the page cache still holds what was
 *   written, so the size is right; after a power cut the tail may be torn
 *   (zeros, or shorter), which the digest check at complete() catches, and
 *   the blob is fetched again.
 * - Only `sha256:<64 hex>` digests are accepted: they become file names.
 * - One writer per digest at a time in this process (lock()); sweep() leaves
 *   a locked digest alone.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fsyncDir } from '../fsync-dir.js';
import { SHA256_DIGEST } from './registry-session.js';

/** The bytes stored for a digest did not hash to it; the partial file is gone. */
export class DigestMismatch extends Error {
  override readonly name = 'DigestMismatch';
  constructor(
    readonly digest: string,
    readonly actual: string,
    /** How many bytes were hashed (and are now discarded). */
    readonly bytes: number,
  ) {
    super(`the ${bytes} bytes stored for ${digest} hash to ${actual}`);
  }
}

/** A partial file open for appending. */
export interface PartialFile {
  readonly digest: string;
  /** Bytes in the file so far: where the next write lands. */
  readonly size: number;
  write(chunk: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface SweepResult {
  /** Files removed, complete and partial. */
  files: number;
  bytes: number;
}

/** Digests being written, per partial file path, across every store object of this process. */
const writers = new Map<string, Promise<void>>();

export class BlobStore {
  private readonly blobDir: string;
  private readonly partialDir: string;

  private constructor(readonly dir: string) {
    this.blobDir = join(dir, 'blobs', 'sha256');
    this.partialDir = join(dir, 'partial');
  }

  /** The store under `dir`, made if missing. */
  static async open(dir: string): Promise<BlobStore> {
    const store = new BlobStore(dir);
    await mkdir(store.blobDir, { recursive: true });
    await mkdir(store.partialDir, { recursive: true });
    return store;
  }

  /** Where the complete blob is (or will be). */
  path(digest: string): string {
    return join(this.blobDir, hexOf(digest));
  }

  async has(digest: string): Promise<boolean> {
    return (await sizeOf(this.path(digest))) !== undefined;
  }

  /** Bytes stored for a blob still being received (0 when none). */
  async partialSize(digest: string): Promise<number> {
    return (await sizeOf(this.partialPath(digest))) ?? 0;
  }

  /**
   * Opens the partial file to write from byte `from` on: 0 starts it over, the stored size
   * continues it. Anything stored past `from` is cut off first, so it cannot shift what follows.
   */
  async openPartial(digest: string, from: number): Promise<PartialFile> {
    const path = this.partialPath(digest);
    const stored = (await sizeOf(path)) ?? 0;
    if (from > stored) throw new RangeError(`cannot continue ${digest} from byte ${from}: only ${stored} are stored`);
    const handle = await open(path, from === 0 ? 'w' : 'r+');
    try {
      if (from < stored) await handle.truncate(from);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return partialFile(digest, handle, from);
  }

  /** Removes the partial file; resolves with the bytes it held. */
  async discardPartial(digest: string): Promise<number> {
    const path = this.partialPath(digest);
    const size = (await sizeOf(path)) ?? 0;
    await unlinkIfThere(path);
    return size;
  }

  /**
   * Hashes the partial file from disk and, when it matches `digest`, makes it the complete blob
   * durably (fsync, rename, fsync of the directory). On a mismatch the partial file is removed
   * and DigestMismatch thrown: a wrong blob is never stored as complete.
   */
  async complete(digest: string): Promise<void> {
    const path = this.partialPath(digest);
    const hash = createHash('sha256');
    let bytes = 0;
    await pipeline(createReadStream(path), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        hash.update(chunk);
        bytes += chunk.length;
      }
    });
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== digest) {
      await unlinkIfThere(path);
      throw new DigestMismatch(digest, actual, bytes);
    }
    const handle = await open(path, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(path, this.path(digest));
    fsyncDir(this.blobDir);
  }

  /** Removes the blob, complete or partial. */
  async remove(digest: string): Promise<void> {
    await unlinkIfThere(this.path(digest));
    await unlinkIfThere(this.partialPath(digest));
  }

  /**
   * Removes every blob and partial file whose digest is not in `keep` (and any file that is not
   * the store's), except digests being written now.
   */
  async sweep(keep: ReadonlySet<string>): Promise<SweepResult> {
    const result: SweepResult = { files: 0, bytes: 0 };
    const visit = async (dir: string, digestOf: (name: string) => string | undefined) => {
      for (const name of await readdir(dir)) {
        const digest = digestOf(name);
        if (digest !== undefined && (keep.has(digest) || writers.has(this.partialPath(digest)))) continue;
        const path = join(dir, name);
        const size = (await sizeOf(path)) ?? 0;
        if (await unlinkIfThere(path)) {
          result.files += 1;
          result.bytes += size;
        }
      }
    };
    await visit(this.blobDir, (name) => (/^[0-9a-f]{64}$/.test(name) ? `sha256:${name}` : undefined));
    await visit(this.partialDir, (name) => (/^sha256-[0-9a-f]{64}$/.test(name) ? `sha256:${name.slice(7)}` : undefined));
    return result;
  }

  /** Bytes in the store, complete and partial: what it takes from the disk. */
  async bytesStored(): Promise<number> {
    let total = 0;
    for (const dir of [this.blobDir, this.partialDir]) {
      for (const name of await readdir(dir)) total += (await sizeOf(join(dir, name))) ?? 0;
    }
    return total;
  }

  /** Waits until no one else in this process writes `digest`; call the returned function when done. */
  async lock(digest: string): Promise<() => void> {
    const key = this.partialPath(digest);
    for (let held = writers.get(key); held !== undefined; held = writers.get(key)) await held;
    let release!: () => void;
    writers.set(
      key,
      new Promise<void>((resolve) => {
        release = () => {
          writers.delete(key);
          resolve();
        };
      }),
    );
    return release;
  }

  private partialPath(digest: string): string {
    return join(this.partialDir, `sha256-${hexOf(digest)}`);
  }
}

function hexOf(digest: string): string {
  if (!SHA256_DIGEST.test(digest)) throw new TypeError(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return digest.slice('sha256:'.length);
}

function partialFile(digest: string, handle: FileHandle, from: number): PartialFile {
  let size = from;
  return {
    digest,
    get size() {
      return size;
    },
    async write(chunk) {
      let written = 0;
      while (written < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, written, chunk.length - written, size);
        written += bytesWritten;
        size += bytesWritten;
      }
    },
    close: () => handle.close(),
  };
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function unlinkIfThere(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
