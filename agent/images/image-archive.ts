/**
 * A `docker save`-format image archive, streamed from the content store into
 * the engine's load, never written whole to disk (the device may not have
 * room for a second copy of the image).
 *
 * The archive holds:
 * - `manifest.json`: `[{Config, RepoTags, Layers}]`, every layer named, base first;
 * - the config blob, byte for byte (its digest is the image ID the engine gives it);
 * - the layer blobs the engine lacks, as stored: compressed as the registry
 *   served them (the engine's load detects gzip and decompresses it itself).
 *
 * A layer whose chain the engine already holds is named in manifest.json but
 * its file is left out: the engine's load looks each layer up by chain ID
 * first and opens the file only when that chain is missing (Docker 20.10,
 * image/tarexport/load.go; checked against the engine in
 * test/e2e/image-load.test.ts). An archive that leaves out a layer the
 * engine does not have is refused by the engine ("no such file").
 *
 * A reference by digest cannot be written in RepoTags, which takes tags
 * only: such an image is loaded under its keep tag (keep-tag.ts), which holds
 * it against `docker image prune`, and found by its ID (image-aliases.ts).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { type Pack, pack as tarPack } from 'tar-stream';
import { parseImageReference } from '../runtime/docker-runtime.js';
import { keepTag } from './keep-tag.js';

export interface ArchiveLayer {
  /** The layer blob's digest (`sha256:…`), as the manifest names it. */
  digest: string;
  /** The complete, verified blob in the content store; absent when the engine holds the layer's chain. */
  file?: string;
}

export interface ArchiveInput {
  /** The config blob's digest. */
  configDigest: string;
  /** The config blob's bytes, as downloaded and verified. */
  config: Buffer;
  /** Tags the engine gives the image (`repo:tag`); the keep tag for an image referenced by digest. */
  repoTags: string[];
  /** Every layer of the image, base first. */
  layers: ArchiveLayer[];
}

/** Every entry's mtime: the engine reads none of them, and a fixed one keeps the archive the same for the same input. */
const ENTRY_TIME = new Date(0);

/**
 * The tags an archive gives the image a spec names: `repo:tag` (`:latest` added when the
 * reference has none); for a reference by digest, with or without a tag beside it, only its
 * keep tag (the engine, pulling `repo:tag@sha256:…`, does not tag it either).
 */
export function repoTagsFor(image: string): string[] {
  const ref = parseImageReference(image);
  if (ref.digest !== undefined) {
    const keep = keepTag(ref);
    return keep === undefined ? [] : [keep];
  }
  return [`${ref.name}:${ref.tag ?? 'latest'}`];
}

/** The archive's file name of a blob: its hex digest, flat (no directories for the engine to make). */
function entryName(digest: string, suffix: string): string {
  return `${digest.slice(digest.indexOf(':') + 1)}${suffix}`;
}

/**
 * The archive as a stream. Layer files are read as the stream is consumed, so a slow engine
 * holds the reads back; destroying the stream stops them and closes every file.
 */
export function imageArchive(input: ArchiveInput): Readable {
  const pack = tarPack();
  const manifest = [
    {
      Config: entryName(input.configDigest, '.json'),
      RepoTags: input.repoTags,
      Layers: input.layers.map((layer) => entryName(layer.digest, '.layer')),
    },
  ];
  writeEntries(pack, input, Buffer.from(JSON.stringify(manifest))).then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))),
  );
  return Readable.from(pack, { objectMode: false });
}

async function writeEntries(pack: Pack, input: ArchiveInput, manifest: Buffer): Promise<void> {
  await addBuffer(pack, 'manifest.json', manifest);
  await addBuffer(pack, entryName(input.configDigest, '.json'), input.config);
  const written = new Set<string>();
  for (const layer of input.layers) {
    if (layer.file === undefined) continue;
    // An image may list one blob twice (two identical layers); one file serves both.
    const name = entryName(layer.digest, '.layer');
    if (written.has(name)) continue;
    written.add(name);
    await addFile(pack, name, layer.file);
  }
}

function addBuffer(pack: Pack, name: string, content: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ name, size: content.length, mode: 0o644, mtime: ENTRY_TIME }, content, (err) => (err ? reject(err) : resolve()));
  });
}

/** One entry of a pack being written (a streamx Writable). */
type PackEntry = ReturnType<Pack['entry']>;

async function addFile(pack: Pack, name: string, file: string): Promise<void> {
  const { size } = await stat(file);
  let entry!: PackEntry;
  const entryDone = new Promise<void>((resolve, reject) => {
    entry = pack.entry({ name, size, mode: 0o644, mtime: ENTRY_TIME }, (err) => (err ? reject(err) : resolve()));
  });
  // Whatever ends the entry early (its pack destroyed by the reader) is seen below, not as an unhandled rejection.
  entryDone.catch(() => undefined);
  const source = createReadStream(file);
  try {
    for await (const chunk of source) {
      if (!entry.write(chunk)) await drained(entry);
    }
    entry.end(undefined);
  } finally {
    source.destroy();
  }
  await entryDone;
}

/** Resolves on the entry's next 'drain'; rejects when it is or gets destroyed first (its pack was destroyed by the reader). */
function drained(entry: PackEntry): Promise<void> {
  const closed = () => new Error('the image archive was closed before it was read to its end');
  if (entry.destroyed || entry.destroying) return Promise.reject(closed());
  return new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      entry.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      entry.off('drain', onDrain);
      reject(closed());
    };
    entry.once('drain', onDrain);
    entry.once('close', onClose);
  });
}
