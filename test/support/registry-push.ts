/**
 * Pushes images straight through a registry's HTTP API (distribution spec:
 * POST an upload, PUT it with ?digest=, PUT the manifest), with no Docker
 * Engine: layers are gzip tars built here, the config is written here, and a
 * base image already in the registry can lend its layers (mounted, not
 * uploaded again). Tests get back every digest and size, so they can check
 * what a download stored against what was pushed.
 *
 * The tar writer is the minimal ustar the engine's `docker load` and the
 * registry accept: regular files, directories and symlinks, names under 100
 * bytes (or split into prefix/name under 255).
 */
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';

export const TEST_REGISTRY_HOST = '127.0.0.1:5000';

const MEDIA = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  list: 'application/vnd.docker.distribution.manifest.list.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface TarEntry {
  /** Relative path inside the layer, no leading slash: `app/run.sh`. */
  path: string;
  type?: 'file' | 'dir' | 'symlink';
  /** A file's content. */
  data?: Buffer | string;
  /** A symlink's target. */
  target?: string;
  /** Default 0o644 for files, 0o755 for directories, 0o777 for symlinks. */
  mode?: number;
}

/** An uncompressed tar of `entries` (ustar). */
export function tar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const data = type === 'file' ? Buffer.from(entry.data ?? '') : Buffer.alloc(0);
    blocks.push(tarHeader(entry, type, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function tarHeader(entry: TarEntry, type: 'file' | 'dir' | 'symlink', size: number): Buffer {
  const header = Buffer.alloc(512);
  let name = type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) throw new Error(`tar path too long: ${entry.path}`);
  }
  const mode = entry.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644);
  const octal = (value: number, width: number) => `${value.toString(8).padStart(width - 1, '0')}\0`;
  header.write(name, 0, 100);
  header.write(octal(mode, 8), 100);
  header.write(octal(0, 8), 108);
  header.write(octal(0, 8), 116);
  header.write(octal(size, 12), 124);
  header.write(octal(0, 12), 136);
  header.write('        ', 148);
  header.write(type === 'dir' ? '5' : type === 'symlink' ? '2' : '0', 156);
  if (type === 'symlink') header.write(entry.target ?? '', 157, 100);
  header.write('ustar\0', 257);
  header.write('00', 263);
  header.write('root', 265, 32);
  header.write('root', 297, 32);
  header.write(prefix, 345, 155);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

/** A layer (gzip tar) holding `entries`. */
export function gzipLayer(entries: TarEntry[]): Buffer {
  return gzipSync(tar(entries), { level: 1 });
}

/**
 * A layer of `size` random bytes in one file: it does not compress, so the blob's size is about
 * `size` (plus ~0.1 %), and no two calls make the same blob.
 */
export function randomLayer(size: number, name = `random-${randomBytes(4).toString('hex')}.bin`): Buffer {
  return gzipLayer([
    { path: 'data', type: 'dir' },
    { path: `data/${name}`, data: randomBytes(size) },
  ]);
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface PushImageOptions {
  /** `host:port` of the registry. Default 127.0.0.1:5000. */
  registry?: string;
  repository: string;
  tag: string;
  /** Layers (gzip tars), base first, after the base image's. */
  layers: Buffer[];
  /** An image in the same registry (`host/repo:tag`) whose layers and config come first. */
  base?: string;
  /** The container config (`Cmd`, `Env`, `Entrypoint`…), over the base's. */
  config?: Record<string, unknown>;
  /** Push a manifest list with one manifest per platform (same layers, a config each); default: one manifest for linux/amd64. */
  platforms?: Platform[];
  /** Basic credentials for a registry that wants them. */
  auth?: { username: string; password: string };
}

export interface PushedBlob {
  digest: string;
  size: number;
}

export interface PushedLayer extends PushedBlob {
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
}

export interface PushedManifest {
  platform: Platform;
  /** This platform manifest's digest and size. */
  digest: string;
  size: number;
  config: PushedBlob;
  layers: PushedLayer[];
}

export interface PushedImage {
  registry: string;
  repository: string;
  tag: string;
  /** `registry/repository:tag`. */
  image: string;
  /** The digest of what the tag names: the manifest, or the list when `platforms` was given. */
  digest: string;
  /** One per platform, in the order given (one for a plain push). */
  manifests: PushedManifest[];
  /** The first platform's config and layers. */
  config: PushedBlob;
  layers: PushedLayer[];
  /** Bytes of the first platform's blobs (config and layers, compressed): what a download of it receives. */
  blobBytes: number;
  /** The same image named through another registry host (a proxy in front of this one). */
  via(host: string): string;
}

export async function pushImage(options: PushImageOptions): Promise<PushedImage> {
  const registry = options.registry ?? TEST_REGISTRY_HOST;
  const api = new RegistryApi(registry, options.auth);
  const { repository, tag } = options;

  let baseLayers: PushedLayer[] = [];
  let baseConfig: Record<string, any> = {};
  if (options.base) {
    const base = await api.readImage(options.base);
    for (const layer of base.layers) await api.mount(repository, base.repository, layer);
    baseLayers = base.layers;
    baseConfig = base.config;
  }

  const layers: PushedLayer[] = [...baseLayers];
  for (const data of options.layers) {
    const layer = { digest: sha256(data), size: data.length, diffId: sha256(gunzipSync(data)) };
    await api.upload(repository, layer.digest, data);
    layers.push(layer);
  }

  const platforms = options.platforms ?? [{ os: 'linux', architecture: 'amd64' }];
  const manifests: PushedManifest[] = [];
  for (const platform of platforms) {
    const config = Buffer.from(
      JSON.stringify({
        ...baseConfig,
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        created: new Date().toISOString(),
        config: { ...(baseConfig.config ?? {}), ...(options.config ?? {}) },
        rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
        history: [
          ...((baseConfig.history as unknown[] | undefined) ?? []),
          ...options.layers.map((_, i) => ({ created_by: `registry-push layer ${i}`, created: new Date().toISOString() })),
        ],
      }),
    );
    const configBlob = { digest: sha256(config), size: config.length };
    await api.upload(repository, configBlob.digest, config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.manifest,
        config: { mediaType: MEDIA.config, ...configBlob },
        layers: layers.map(({ digest, size }) => ({ mediaType: MEDIA.layer, digest, size })),
      }),
    );
    const digest = sha256(manifest);
    await api.putManifest(repository, platforms.length === 1 ? tag : digest, manifest, MEDIA.manifest);
    manifests.push({ platform, digest, size: manifest.length, config: configBlob, layers });
  }

  let digest = manifests[0]!.digest;
  if (options.platforms) {
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.list,
        manifests: manifests.map((m, i) => ({
          mediaType: MEDIA.manifest,
          digest: m.digest,
          size: m.size,
          platform: platforms[i],
        })),
      }),
    );
    digest = sha256(list);
    await api.putManifest(repository, tag, list, MEDIA.list);
  }

  const first = manifests[0]!;
  return {
    registry,
    repository,
    tag,
    image: `${registry}/${repository}:${tag}`,
    digest,
    manifests,
    config: first.config,
    layers: first.layers,
    blobBytes: first.config.size + first.layers.reduce((sum, layer) => sum + layer.size, 0),
    via: (host) => `${host}/${repository}:${tag}`,
  };
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The few registry calls a push needs, over fetch. */
class RegistryApi {
  private readonly headers: Record<string, string>;

  constructor(
    private readonly registry: string,
    auth: { username: string; password: string } | undefined,
  ) {
    this.headers = auth ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {};
  }

  async upload(repository: string, digest: string, data: Buffer): Promise<void> {
    const head = await this.call('HEAD', `/v2/${repository}/blobs/${digest}`);
    if (head.status === 200) return;
    const started = await this.call('POST', `/v2/${repository}/blobs/uploads/`);
    await expectStatus(started, 202, `start an upload to ${repository}`);
    const location = new URL(started.headers.get('location') ?? '', `http://${this.registry}`);
    location.searchParams.set('digest', digest);
    const put = await this.call('PUT', location.pathname + location.search, data, { 'content-type': 'application/octet-stream' });
    await expectStatus(put, 201, `upload ${digest} to ${repository}`);
  }

  /** Makes a blob of `from` part of `repository` without uploading it again. */
  async mount(repository: string, from: string, blob: PushedBlob): Promise<void> {
    if (repository === from) return;
    const res = await this.call('POST', `/v2/${repository}/blobs/uploads/?mount=${blob.digest}&from=${from}`);
    if (res.status === 201) return;
    await res.arrayBuffer();
    // The registry opened an ordinary upload instead: copy the bytes.
    const data = await this.call('GET', `/v2/${from}/blobs/${blob.digest}`);
    await expectStatus(data, 200, `read ${blob.digest} of ${from}`, false);
    await this.upload(repository, blob.digest, Buffer.from(await data.arrayBuffer()));
  }

  async putManifest(repository: string, reference: string, body: Buffer, mediaType: string): Promise<void> {
    const res = await this.call('PUT', `/v2/${repository}/manifests/${reference}`, body, { 'content-type': mediaType });
    await expectStatus(res, 201, `put the manifest ${repository}:${reference}`);
  }

  /** A single-platform image in this registry: its repository, layers (with diff IDs) and config. */
  async readImage(image: string): Promise<{ repository: string; layers: PushedLayer[]; config: Record<string, any> }> {
    const prefix = `${this.registry}/`;
    if (!image.startsWith(prefix)) throw new Error(`the base ${image} is not in ${this.registry}`);
    const rest = image.slice(prefix.length);
    const colon = rest.lastIndexOf(':');
    const repository = rest.slice(0, colon);
    const res = await this.call('GET', `/v2/${repository}/manifests/${rest.slice(colon + 1)}`, undefined, { accept: MEDIA.manifest });
    await expectStatus(res, 200, `read the manifest of ${image}`, false);
    const manifest = (await res.json()) as { config: PushedBlob; layers: PushedBlob[] };
    const configRes = await this.call('GET', `/v2/${repository}/blobs/${manifest.config.digest}`);
    await expectStatus(configRes, 200, `read the config of ${image}`, false);
    const config = (await configRes.json()) as Record<string, any>;
    const diffIds = config.rootfs?.diff_ids as string[];
    return {
      repository,
      layers: manifest.layers.map((layer, i) => ({ digest: layer.digest, size: layer.size, diffId: diffIds[i]! })),
      config,
    };
  }

  private call(method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`http://${this.registry}${path}`, {
      method,
      headers: { ...this.headers, ...headers },
      ...(body ? { body: new Uint8Array(body.buffer, body.byteOffset, body.length) } : {}),
    });
  }
}

async function expectStatus(res: Response, status: number, what: string, drain = true): Promise<void> {
  if (res.status === status) {
    if (drain) await res.arrayBuffer();
    return;
  }
  throw new Error(`registry-push: could not ${what}: ${res.status} ${await res.text()}`);
}
