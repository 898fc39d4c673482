/**
 * The agent releases a hub can hand its devices: the tarballs docker/release-bundle.sh writes
 * into the releases dir (`--releases-dir`, served at GET /releases/<file>, broker/http/install.ts),
 * named `flotilla-<version>-linux-<arch>.tar.gz`.
 *
 * For each tarball a device needs what it checks before it switches: the sha256 (from the
 * `<file>.sha256` beside it when there is one, else computed), the size, and the sum of the
 * sizes of the files it unpacks into (the device's disk check counts both). Reading them costs a
 * pass over ~40 MB, so a result is kept per file while its size and mtime stay the same.
 *
 * Only file names this module builds from a version it has checked reach the file system.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Logger } from 'pino';
import type { AgentBundleFile } from '../store/agent-targets.js';

/** The architectures devices report (`state.host.arch`) that a release is built for. */
export const RELEASE_ARCHES = ['amd64', 'arm64'] as const;

const RELEASE_NAME = /^flotilla-([0-9A-Za-z][0-9A-Za-z.+_-]{0,63})-linux-(amd64|arm64)\.tar\.gz$/;

export function releaseFileName(version: string, arch: string): string {
  return `flotilla-${version}-linux-${arch}.tar.gz`;
}

/** The versions the releases dir holds, each with its architectures, sorted by version then arch. */
export async function listReleases(dir: string): Promise<{ version: string; arches: string[] }[]> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  const byVersion = new Map<string, string[]>();
  for (const entry of entries.sort()) {
    const match = RELEASE_NAME.exec(entry);
    if (!match?.[1] || !match[2]) continue;
    const arches = byVersion.get(match[1]) ?? [];
    arches.push(match[2]);
    byVersion.set(match[1], arches);
  }
  return [...byVersion].map(([version, arches]) => ({ version, arches }));
}

/**
 * Reads a release's tarballs of `version` from `dir`, one per architecture found. Reading the same
 * unchanged files again answers from the cache, a file that is no release included: it is logged
 * once, when read, and refused with the same ReleaseFileError until it changes.
 */
export class ReleasesDir {
  private readonly cache = new Map<string, { key: string; bundle: Promise<AgentBundleFile> }>();

  constructor(
    readonly dir: string | undefined,
    private readonly logger?: Logger,
  ) {}

  /** The version's bundles by arch (`{}` when the dir holds none of it, or there is no dir). */
  async bundles(version: string): Promise<Record<string, AgentBundleFile>> {
    const found: Record<string, AgentBundleFile> = {};
    if (this.dir === undefined) return found;
    const read = await Promise.all(RELEASE_ARCHES.map((arch) => this.bundle(releaseFileName(version, arch), version)));
    for (const [i, arch] of RELEASE_ARCHES.entries()) {
      const bundle = read[i];
      if (bundle) found[arch] = bundle;
    }
    return found;
  }

  /** What the dir holds, for an error that names it. */
  async versions(): Promise<{ version: string; arches: string[] }[]> {
    return this.dir === undefined ? [] : listReleases(this.dir);
  }

  private async bundle(file: string, version: string): Promise<AgentBundleFile | undefined> {
    const path = join(this.dir ?? '', file);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    const key = `${info.size}:${info.mtimeMs}`;
    const cached = this.cache.get(path);
    if (cached?.key === key) return cached.bundle;
    const bundle = readBundle(path, file, version, info.size, info.mtimeMs);
    bundle.catch((err: Error) => {
      if (!(err instanceof ReleaseFileError && err.lasting)) this.cache.delete(path);
      if (err instanceof ReleaseFileError) {
        this.logger?.warn({ file, releasesDir: this.dir, problem: err.problem }, 'a release tarball in the releases dir is refused');
      }
    });
    this.cache.set(path, { key, bundle });
    return bundle;
  }
}

/** The files a release must hold, as docker/release-bundle.sh lays it out: the device runs the first and reads its version from the second. */
export const RELEASE_ENTRY = 'flotilla/bin/flotilla';
export const RELEASE_PACKAGE = 'flotilla/package.json';

const REBUILD = 'rebuild it with docker/release-bundle.sh <amd64|arm64> (it writes dist/bundles/flotilla-<version>-linux-<arch>.tar.gz)';

/**
 * A tarball in the releases dir that no device could install: not a gzipped tar, not a release,
 * or the release of another version. `problem` says what is wrong with it and ends in the fix.
 * `lasting`: it holds while the file is unchanged (an unreadable file may be fixed by its mode).
 */
export class ReleaseFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly lasting = true,
  ) {
    super(`${file} ${problem}`);
    this.name = 'ReleaseFileError';
  }
}

async function readBundle(path: string, file: string, version: string, bytes: number, mtimeMs: number): Promise<AgentBundleFile> {
  if (bytes === 0) throw new ReleaseFileError(file, `is empty; ${REBUILD}`);
  try {
    const [sha256, release] = await Promise.all([checksumOf(path, file, mtimeMs), readRelease(path)]);
    checkRelease(file, version, release);
    return { file, sha256, bytes, unpackedBytes: Math.max(1, release.unpackedBytes) };
  } catch (err) {
    throw asReleaseFileError(file, err as NodeJS.ErrnoException);
  }
}

function asReleaseFileError(file: string, err: NodeJS.ErrnoException): Error {
  if (err instanceof ReleaseFileError) return err;
  // zlib's codes: Z_DATA_ERROR (not gzip: "incorrect header check"), Z_BUF_ERROR (cut short: "unexpected end of file").
  if (err.code?.startsWith('Z_')) {
    const what = err.code === 'Z_BUF_ERROR' ? 'is cut short (its gzip stream ends early)' : 'is not gzip data';
    return new ReleaseFileError(file, `${what}: ${err.message}; ${REBUILD}`);
  }
  if (err instanceof TarFormatError) return new ReleaseFileError(file, `${err.message}; ${REBUILD}`);
  if (err.code !== undefined) return new ReleaseFileError(file, `cannot be read by the hub: ${err.message}`, false);
  return err;
}

/** A release's tar as read: it must hold bin/flotilla and a package.json naming the version asked for. */
function checkRelease(file: string, version: string, release: ReleaseContents): void {
  const missing = [RELEASE_ENTRY, RELEASE_PACKAGE].filter((name) => !release.files.has(name));
  if (missing.length > 0) {
    const held =
      release.firstNames.length === 0
        ? 'no files'
        : `${release.firstNames.join(', ')}${release.entries > release.firstNames.length ? ', …' : ''}`;
    throw new ReleaseFileError(file, `is not a flotilla release: it lacks ${missing.join(' and ')} (it holds ${held}); ${REBUILD}`);
  }
  const text = release.files.get(RELEASE_PACKAGE)?.toString('utf8') ?? '';
  let held: unknown;
  try {
    held = (JSON.parse(text) as { version?: unknown }).version;
  } catch {
    throw new ReleaseFileError(file, `holds a ${RELEASE_PACKAGE} that is not JSON; ${REBUILD}`);
  }
  if (held !== version) {
    const holds = typeof held === 'string' ? `version ${JSON.stringify(held)}` : 'no version';
    throw new ReleaseFileError(
      file,
      `is not release ${version}: its ${RELEASE_PACKAGE} has ${holds} (a bundle renamed, or built from another checkout); ${REBUILD.replace('rebuild it', `build ${version}`)} from a checkout whose package.json says ${version}`,
    );
  }
}

/**
 * The hex digest from `<file>.sha256` (as sha256sum prints it) when it is there, well formed and
 * not older than the tarball (a bundle rebuilt over an old one leaves a stale sum); else computed.
 */
async function checksumOf(path: string, file: string, mtimeMs: number): Promise<string> {
  const sumFile = `${path}.sha256`;
  const fresh = ((await stat(sumFile).catch(() => undefined))?.mtimeMs ?? -1) >= mtimeMs;
  const written = fresh ? await readFile(sumFile, 'utf8').catch(() => undefined) : undefined;
  const match = written === undefined ? null : /^([0-9a-fA-F]{64})(?:\s+\*?(\S+))?\s*$/.exec(written.trim());
  if (match?.[1] && (match[2] === undefined || match[2] === file || match[2].endsWith(`/${file}`))) return match[1].toLowerCase();
  return sha256File(path);
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

export interface ReleaseContents {
  /** The sum of the sizes of its regular files. */
  unpackedBytes: number;
  /** The entries named RELEASE_ENTRY and RELEASE_PACKAGE that it holds, with their data (empty for a link). */
  files: ReadonlyMap<string, Buffer>;
  /** How many entries it holds, and the first few names, for an error saying what it is instead. */
  entries: number;
  firstNames: string[];
}

/** A gzipped tar read as it streams: its unpacked size and the release's two small files. */
export async function readRelease(path: string): Promise<ReleaseContents> {
  const reader = new TarReader([RELEASE_ENTRY, RELEASE_PACKAGE]);
  const file = createReadStream(path);
  const stream = file.pipe(createGunzip());
  // pipe() does not forward the file's errors (EACCES): they end the loop below as gunzip's would.
  file.on('error', (err) => stream.destroy(err));
  for await (const chunk of stream) {
    reader.push(chunk as Buffer);
    if (reader.ended) {
      stream.destroy();
      break;
    }
  }
  // The gzip stream ended whole before the archive did.
  if (!reader.ended)
    throw new TarFormatError(
      reader.entries === 0
        ? 'holds no tar archive (its gzip data is not a tar)'
        : 'holds a tar archive cut short (it ends before its end blocks)',
    );
  return { unpackedBytes: reader.total, files: reader.files, entries: reader.entries, firstNames: reader.firstNames };
}

/** The sum of the sizes of the regular files in a gzipped tar, read as it streams. */
export async function unpackedSize(path: string): Promise<number> {
  return (await readRelease(path)).unpackedBytes;
}

const BLOCK = 512;
/** ustar type flags of regular files: '0', NUL (old tars), '7' (contiguous). Links, dirs, pax and GNU long-name records unpack into no file bytes. */
const REGULAR = new Set([0x30, 0x00, 0x37]);
/** GNU long-name record ('L'), pax extended header ('x'): their data names the entry that follows. */
const LONG_NAME = 0x4c;
const PAX = 0x78;
/** The most of an entry's data kept (a name record, a wanted file): release-bundle.sh's package.json is ~2 KB. */
const KEEP_MAX = 256 * 1024;
const FIRST_NAMES = 5;

/** A gunzipped stream that is not a tar archive (a header whose checksum does not add up). */
export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

/**
 * A tar stream's headers, read 512-byte block by block: each header gives the size of the data
 * that follows (rounded up to whole blocks), which is skipped, except the data of a name record
 * and of the `wanted` entries, which is kept. Two zero blocks end the archive.
 */
export class TarReader {
  total = 0;
  ended = false;
  entries = 0;
  readonly firstNames: string[] = [];
  /** The wanted entries found, by name, with their data (empty for a link or a dir). */
  readonly files = new Map<string, Buffer>();
  private header = Buffer.alloc(0);
  /** Data bytes (padding included) still to skip before the next header. */
  private skip = 0;
  private zeroBlocks = 0;
  /** The data being kept of the current entry, and what to do with it once whole. */
  private keep: { size: number; chunks: Buffer[]; got: number; done: (data: Buffer) => void } | undefined;
  /** The name a long-name or pax record gave the next entry. */
  private nextName: string | undefined;

  constructor(private readonly wanted: readonly string[] = []) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        if (this.keep) this.kept(chunk.subarray(at, at + n));
        this.skip -= n;
        at += n;
        continue;
      }
      const need = BLOCK - this.header.length;
      const take = chunk.subarray(at, at + need);
      this.header = this.header.length === 0 ? Buffer.from(take) : Buffer.concat([this.header, take]);
      at += take.length;
      if (this.header.length === BLOCK) {
        this.readHeader(this.header);
        this.header = Buffer.alloc(0);
      }
    }
  }

  /** Data of the kept entry (padding included: what goes past its size is dropped). */
  private kept(data: Buffer): void {
    const keep = this.keep;
    if (!keep) return;
    const part = data.subarray(0, Math.max(0, Math.min(keep.size, KEEP_MAX) - keep.got));
    if (part.length > 0) keep.chunks.push(Buffer.from(part));
    keep.got += data.length;
    if (keep.got >= keep.size) {
      this.keep = undefined;
      keep.done(Buffer.concat(keep.chunks));
    }
  }

  private readHeader(block: Buffer): void {
    if (block.every((byte) => byte === 0)) {
      if (++this.zeroBlocks === 2) this.ended = true;
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumHolds(block)) {
      throw new TarFormatError(
        this.entries === 0
          ? 'holds no tar archive (its gzip data is not a tar)'
          : 'holds a damaged tar archive (a header whose checksum is wrong)',
      );
    }
    const size = tarNumber(block.subarray(124, 136));
    const type = block[156] ?? 0;
    this.skip = Math.ceil(size / BLOCK) * BLOCK;
    if (type === LONG_NAME || type === PAX) {
      this.keepData(size, (data) => {
        this.nextName = (type === LONG_NAME ? cString(data) : paxPath(data)) ?? this.nextName;
      });
      return;
    }
    const name = normalName(this.nextName ?? headerName(block));
    this.nextName = undefined;
    this.entries += 1;
    if (this.firstNames.length < FIRST_NAMES) this.firstNames.push(name);
    if (REGULAR.has(type)) this.total += size;
    if (!this.wanted.includes(name)) return;
    if (REGULAR.has(type)) this.keepData(size, (data) => this.files.set(name, data));
    else this.files.set(name, Buffer.alloc(0));
  }

  private keepData(size: number, done: (data: Buffer) => void): void {
    if (size === 0) done(Buffer.alloc(0));
    else this.keep = { size, chunks: [], got: 0, done };
  }
}

/** The header's checksum field against the sum of its bytes, the field itself counted as spaces (unsigned, or signed as some old tars sum). */
function checksumHolds(block: Buffer): boolean {
  const stored = tarNumber(block.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** ustar's name, after its prefix field when the header has one. */
function headerName(block: Buffer): string {
  const name = cString(block.subarray(0, 100));
  const ustar = block.subarray(257, 262).toString('latin1') === 'ustar';
  const prefix = ustar ? cString(block.subarray(345, 500)) : '';
  return prefix === '' ? name : `${prefix}/${name}`;
}

/** A pax header's `path` record (`<len> path=<value>\n`), if it has one. */
function paxPath(data: Buffer): string | undefined {
  for (const record of data.toString('utf8').split('\n')) {
    const match = /^\d+ path=(.*)$/s.exec(record);
    if (match) return match[1];
  }
  return undefined;
}

function cString(data: Buffer): string {
  const end = data.indexOf(0);
  return data.subarray(0, end === -1 ? data.length : end).toString('utf8');
}

/** `./flotilla/bin/` → `flotilla/bin`: `tar -C dir .` writes a leading `./`, and a directory ends in `/`. */
function normalName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

/** A tar numeric field: octal digits (NUL or space ended), or base-256 when the high bit of the first byte is set (GNU, files over 8 GiB). */
export function tarNumber(field: Buffer): number {
  const first = field[0] ?? 0;
  if (first & 0x80) {
    let value = first & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const digits = /^[ \0]*([0-7]*)/.exec(field.toString('latin1'))?.[1] ?? '';
  return digits === '' ? 0 : Number.parseInt(digits, 8);
}
