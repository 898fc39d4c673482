/**
 * What a digest reference (`repo@sha256:…`) names on this engine, for images
 * the agent loaded itself.
 *
 * The engine records a reference by digest only when it pulls the image from
 * a registry; an image loaded from an archive can carry tags (RepoTags) but
 * no digest. So after loading such an image the agent keeps reference →
 * image ID (the config blob's digest) here, and the Docker runtime resolves
 * a digest reference through it (docker-runtime.ts: hasImage, create,
 * removeImage). The image carries a keep tag (keep-tag.ts) only so that
 * `docker image prune` leaves it.
 *
 * Invariants:
 * - The file (`image-aliases.json` in the agent's data dir) is replaced
 *   atomically: written beside, fsynced, renamed over, the directory fsynced.
 *   A power cut leaves the old map or the new one, never a torn one.
 * - An alias says only what the agent loaded; whether the image still exists
 *   is the engine's to say (a user may `docker rmi` it): callers check.
 * - A file that cannot be read or parsed is an empty map, logged: losing an
 *   alias costs a new fetch of the config blob (the engine still has the
 *   layers), never a wrong image.
 * - Writes go one after another in the order they were asked.
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDir } from '../fsync-dir.js';
import { SHA256_DIGEST } from './registry-session.js';

export const IMAGE_ALIASES_FILE = 'image-aliases.json';

/** The slice of a pino logger this file uses. */
export interface AliasesLogger {
  warn(obj: object, msg?: string): void;
}

const silent: AliasesLogger = { warn() {} };

interface AliasesFile {
  version: 1;
  /** Reference as a spec wrote it → image ID (`sha256:…`). */
  aliases: Record<string, string>;
}

export class ImageAliases {
  private map: Map<string, string> | undefined;
  private loading: Promise<Map<string, string>> | undefined;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly log: AliasesLogger = silent,
  ) {}

  /** The aliases of the agent whose data dir is `dataDir`. */
  static inDataDir(dataDir: string, logger?: AliasesLogger): ImageAliases {
    return new ImageAliases(join(dataDir, IMAGE_ALIASES_FILE), logger);
  }

  /** The image ID the agent loaded for `reference`, if it did. */
  async get(reference: string): Promise<string | undefined> {
    return (await this.aliases()).get(reference);
  }

  /** Every reference aliased to `imageId`. */
  async referencesTo(imageId: string): Promise<string[]> {
    return [...(await this.aliases())].filter(([, id]) => id === imageId).map(([reference]) => reference);
  }

  /** Records that `reference` is image `imageId`; resolves once that is on disk. */
  set(reference: string, imageId: string): Promise<void> {
    if (!SHA256_DIGEST.test(imageId))
      return Promise.reject(new Error(`an image ID must be sha256:<64 hex>, not ${JSON.stringify(imageId)}`));
    return this.change((map) => {
      if (map.get(reference) === imageId) return false;
      map.set(reference, imageId);
      return true;
    });
  }

  /** Forgets `reference`; resolves once that is on disk. Forgetting an unknown reference writes nothing. */
  delete(reference: string): Promise<void> {
    return this.change((map) => map.delete(reference));
  }

  private change(edit: (map: Map<string, string>) => boolean): Promise<void> {
    const next = this.writes.then(async () => {
      // Edited on a copy: a write that fails leaves the map as the file still has it.
      const map = new Map(await this.aliases());
      if (!edit(map)) return;
      await this.persist(map);
      this.map = map;
    });
    // A failed write fails its caller, not the writes queued after it.
    this.writes = next.catch(() => undefined);
    return next;
  }

  private aliases(): Promise<Map<string, string>> {
    if (this.map) return Promise.resolve(this.map);
    this.loading ??= this.read().then((map) => {
      this.map = map;
      return map;
    });
    return this.loading;
  }

  private async read(): Promise<Map<string, string>> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log.warn({ err, file: this.file }, 'cannot read the image aliases; starting without them');
      return new Map();
    }
    const map = new Map<string, string>();
    try {
      const parsed = JSON.parse(text) as Partial<AliasesFile>;
      for (const [reference, id] of Object.entries(parsed.aliases ?? {})) {
        if (typeof id === 'string' && SHA256_DIGEST.test(id)) map.set(reference, id);
        else this.log.warn({ file: this.file, reference }, 'image alias without a valid image ID; dropped');
      }
    } catch (err) {
      this.log.warn({ err, file: this.file }, 'the image aliases file is not JSON; starting without them');
    }
    return map;
  }

  private async persist(map: Map<string, string>): Promise<void> {
    const body: AliasesFile = { version: 1, aliases: Object.fromEntries([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
    const temporary = `${this.file}.tmp`;
    try {
      const fd = openSync(temporary, 'w', 0o600);
      try {
        writeSync(fd, `${JSON.stringify(body, null, 2)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      await rename(temporary, this.file);
      fsyncDir(dirname(this.file));
    } catch (err) {
      await rm(temporary, { force: true }).catch(() => undefined);
      throw err;
    }
  }
}
