/**
 * Secret files (`secrets: [{ name, path? }]` in a container spec) written into
 * a created container before it starts, with the engine's archive API
 * (`PUT /containers/{id}/archive`, dockerode `putArchive`): a small tar built
 * in memory, never a file on the device's disk outside the container.
 *
 * - Mode 0400, owned by the spec's `user` when it is numeric (`1000` or
 *   `1000:1000`), else by root. A named non-root user cannot be resolved to a
 *   uid without reading the image's /etc/passwd, so such a file is 0444
 *   (Swarm's default for secrets) instead of one its process cannot read.
 * - Directories on the way (`/run/secrets` in a `FROM scratch` image) are
 *   created 0755 root; existing ones are left alone: a tar entry for an
 *   existing directory would make the engine reset its mode and owner.
 * - The value lives in the container's writable layer, as Compose's files
 *   do; recreating the container (the spec hash covers the value) replaces it.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { type ContainerSpec, secretFilePath } from '../../shared/index.js';

export interface TarEntry {
  /** Relative to where the archive is extracted, without a leading slash. */
  name: string;
  type: 'file' | 'dir';
  mode: number;
  uid: number;
  gid: number;
  data?: Buffer;
}

/** A ustar archive of `entries`: 512-byte headers, data padded to 512, two zero blocks at the end. */
export function tarArchive(entries: readonly TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.type === 'file' ? (entry.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    blocks.push(tarHeader(entry, data.length, mtime));
    if (data.length > 0) blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function tarHeader(entry: TarEntry, size: number, mtime: number): Buffer {
  const header = Buffer.alloc(512);
  const fullName = entry.type === 'dir' ? `${entry.name}/` : entry.name;
  const [prefix, name] = splitName(fullName);
  header.write(name, 0, 100, 'utf8');
  octal(header, 100, 8, entry.mode);
  octal(header, 108, 8, entry.uid);
  octal(header, 116, 8, entry.gid);
  octal(header, 124, 12, size);
  octal(header, 136, 12, mtime);
  header.fill(' ', 148, 156); // the checksum is computed with its own field as spaces
  header.write(entry.type === 'dir' ? '5' : '0', 156, 1, 'ascii');
  header.write('ustar\u000000', 257, 8, 'ascii');
  header.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return header;
}

/** ustar keeps up to 100 bytes of name and 155 of prefix, split at a slash. */
function splitName(path: string): [string, string] {
  if (Buffer.byteLength(path) <= 100) return ['', path];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return [prefix, name];
  }
  throw new Error(`path too long for a tar entry: ${path}`);
}

function octal(header: Buffer, offset: number, length: number, value: number): void {
  header.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, offset, length, 'ascii');
}

/** uid, gid and mode of a secret file for the container's `user` (see the header comment). */
export function secretFileOwner(user: string | undefined): { uid: number; gid: number; mode: number } {
  if (user === undefined || user === '' || user === 'root') return { uid: 0, gid: 0, mode: 0o400 };
  const [uid, gid] = user.split(':');
  if (uid !== undefined && /^[0-9]+$/.test(uid) && (gid === undefined || /^[0-9]+$/.test(gid))) {
    return { uid: Number(uid), gid: gid === undefined ? Number(uid) : Number(gid), mode: 0o400 };
  }
  return { uid: 0, gid: 0, mode: 0o444 };
}

/**
 * Writes every secret file of `spec` into the (created, not started)
 * container. Throws with the file's path, never its content.
 */
export async function writeSecretFiles(container: Dockerode.Container, spec: ContainerSpec): Promise<void> {
  const owner = secretFileOwner(spec.user);
  for (const secret of spec.secrets ?? []) {
    const path = secretFilePath(secret);
    if (secret.data === undefined) throw new Error(`secret file ${path} (secret "${secret.name}") has no value in the desired state`);
    const base = await nearestExistingDir(container, posix.dirname(path));
    const relative = posix.relative(base, path);
    const parts = relative.split('/');
    const entries: TarEntry[] = parts.slice(0, -1).map((_, i) => ({
      name: parts.slice(0, i + 1).join('/'),
      type: 'dir',
      mode: 0o755,
      uid: 0,
      gid: 0,
    }));
    entries.push({ name: relative, type: 'file', ...owner, data: Buffer.from(secret.data, 'base64') });
    await container.putArchive(Readable.from([tarArchive(entries)]), { path: base });
  }
}

/** `dir` or its closest ancestor that exists in the container's filesystem (`/` always does). */
async function nearestExistingDir(container: Dockerode.Container, dir: string): Promise<string> {
  for (let current = dir; ; current = posix.dirname(current)) {
    if (current === '/') return '/';
    try {
      const res = (await container.infoArchive({ path: current })) as { resume?: () => void } | undefined;
      res?.resume?.();
      return current;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
}
