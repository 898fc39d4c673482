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
 * unchanged files again answers from the cache.
 */
export class ReleasesDir {
  private readonly cache = new Map<string, { key: string; bundle: Promise<AgentBundleFile> }>();

  constructor(readonly dir: string | undefined) {}

  /** The version's bundles by arch (`{}` when the dir holds none of it, or there is no dir). */
  async bundles(version: string): Promise<Record<string, AgentBundleFile>> {
    const found: Record<string, AgentBundleFile> = {};
    if (this.dir === undefined) return found;
    const read = await Promise.all(RELEASE_ARCHES.map((arch) => this.bundle(releaseFileName(version, arch))));
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

  private async bundle(file: string): Promise<AgentBundleFile | undefined> {
    const path = join(this.dir ?? '', file);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    const key = `${info.size}:${info.mtimeMs}`;
    const cached = this.cache.get(path);
    if (cached?.key === key) return cached.bundle;
    const bundle = readBundle(path, file, info.size, info.mtimeMs);
    bundle.catch(() => this.cache.delete(path));
    this.cache.set(path, { key, bundle });
    return bundle;
  }
}

async function readBundle(path: string, file: string, bytes: number, mtimeMs: number): Promise<AgentBundleFile> {
  const [sha256, unpackedBytes] = await Promise.all([checksumOf(path, file, mtimeMs), unpackedSize(path)]);
  return { file, sha256, bytes, unpackedBytes: Math.max(1, unpackedBytes) };
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

/** The sum of the sizes of the regular files in a gzipped tar, read as it streams. */
export async function unpackedSize(path: string): Promise<number> {
  const reader = new TarSizeReader();
  const stream = createReadStream(path).pipe(createGunzip());
  for await (const chunk of stream) {
    reader.push(chunk as Buffer);
    if (reader.ended) {
      stream.destroy();
      break;
    }
  }
  return reader.total;
}

const BLOCK = 512;
/** ustar type flags of regular files: '0', NUL (old tars), '7' (contiguous). Links, dirs, pax and GNU long-name records unpack into no file bytes. */
const REGULAR = new Set([0x30, 0x00, 0x37]);

/**
 * A tar stream's headers, read 512-byte block by block: each header gives the size of the data
 * that follows (rounded up to whole blocks), which is skipped. Two zero blocks end the archive.
 */
export class TarSizeReader {
  total = 0;
  ended = false;
  private header = Buffer.alloc(0);
  /** Data bytes (padding included) still to skip before the next header. */
  private skip = 0;
  private zeroBlocks = 0;

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
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

  private readHeader(block: Buffer): void {
    if (block.every((byte) => byte === 0)) {
      if (++this.zeroBlocks === 2) this.ended = true;
      return;
    }
    this.zeroBlocks = 0;
    const size = tarNumber(block.subarray(124, 136));
    const type = block[156] ?? 0;
    if (REGULAR.has(type)) this.total += size;
    this.skip = Math.ceil(size / BLOCK) * BLOCK;
  }
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
