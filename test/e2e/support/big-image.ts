/**
 * Runnable multi-layer images of a real size in the loopback registry, for the
 * image-download tests: a static busybox layer, then layers of incompressible
 * pseudo-random data (seeded, so a recipe always makes the same bytes), then a
 * small layer with the program. The program writes `sha256sum` of every data
 * file to /www/index.html and serves it with httpd on port 80: a container that
 * answers with the sums `expectedIndex` holds proves the layers reached the
 * engine intact.
 *
 * - `big`: four 12 MiB data layers, about 50 MB compressed.
 * - `small`: one 4 MiB data layer, about 5 MB (a paced download of `big` at
 *   256 KiB/s would take over three minutes).
 *
 * Each `variant` has layers of its own (its name seeds the data and is written
 * into the busybox layer), so tests running at the same time, or one after
 * another on one engine, never find each other's layers already loaded. The
 * images are pushed through the registry's HTTP API, no engine involved, at
 * most once per recipe: the config carries the recipe's hash as a label, and a
 * registry already serving it is left alone. Nothing is left in the engine:
 * tests download them.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { docker } from './docker-cli.js';
import { TEST_REGISTRY } from './engine.js';
import { RECIPE_LABEL } from './images.js';

export type BigImageSize = 'big' | 'small';

export interface Blob {
  digest: string;
  size: number;
}

export interface BigImage {
  /** `127.0.0.1:5000/flotilla-test/download-<variant>-<size>:v1`. */
  image: string;
  /** `flotilla-test/download-<variant>-<size>`. */
  repository: string;
  tag: string;
  /** The image config blob; its digest is the engine's image ID. */
  config: Blob;
  /** Compressed layers as the registry serves them, base first. */
  layers: Blob[];
  /** The layers' compressed sizes, summed: what a download of the whole image must receive. */
  layerBytes: number;
  /** What the running container serves on "/": `sha256sum` of its data files. */
  expectedIndex: string;
}

const MiB = 1024 * 1024;
const DATA_LAYERS: Record<BigImageSize, number[]> = { big: [12 * MiB, 12 * MiB, 12 * MiB, 12 * MiB], small: [4 * MiB] };
const BUSYBOX = process.env.FLOTILLA_TEST_BUSYBOX ?? '/bin/busybox';
const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';
const LAYER_TYPE = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const CONFIG_TYPE = 'application/vnd.docker.container.image.v1+json';
/** Fixed, so a recipe's tars, and so its digests, do not depend on when they were made. */
const EPOCH = new Date(0);

/** Computes the sums, then serves them until SIGTERM (PID 1 ignores signals it does not trap). */
const PROGRAM = ['cd /data && sha256sum * > /www/index.html', 'httpd -f -p 80 -h /www &', "trap 'kill $!; exit 0' TERM INT", 'wait'].join(
  '\n',
);

const cache = new Map<string, Promise<BigImage>>();

/** The image of this variant and size, pushed unless the registry has its recipe already; once per process. */
export function ensureBigImage(variant: string, size: BigImageSize = 'big'): Promise<BigImage> {
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(variant)) throw new Error(`variant must be lowercase letters, digits and dashes, got "${variant}"`);
  const key = `${variant}-${size}`;
  let image = cache.get(key);
  if (!image) {
    image = prepare(variant, size).catch((err: unknown) => {
      cache.delete(key); // let a later call retry
      throw err;
    });
    cache.set(key, image);
  }
  return image;
}

/** The same image named through another registry address (a proxy in front of the registry): `<address>/<repository>:<tag>`. */
export function referenceVia(image: BigImage, address: string): string {
  return `${address}/${image.repository}:${image.tag}`;
}

/** Removes every copy of the image from the engine (whatever it was tagged), so the next test downloads it again. */
export async function removeFromEngine(image: BigImage): Promise<void> {
  await docker('image', 'rm', '--force', image.config.digest).catch((err: Error) => {
    if (!/No such image/i.test(err.message)) throw err;
  });
}

async function prepare(variant: string, size: BigImageSize): Promise<BigImage> {
  const repository = `flotilla-test/download-${variant}-${size}`;
  const tag = 'v1';
  const recipe = createHash('sha256')
    .update(JSON.stringify({ variant, layers: DATA_LAYERS[size], program: PROGRAM, busybox: busyboxIdentity() }))
    .digest('hex')
    .slice(0, 16);
  const dataFiles = DATA_LAYERS[size].map((bytes, i) => ({ name: `part-${i + 1}.bin`, data: pseudoRandom(`${variant}/${i + 1}`, bytes) }));
  const expectedIndex = dataFiles.map((f) => `${createHash('sha256').update(f.data).digest('hex')}  ${f.name}`).join('\n');

  const served = await registryImage(repository, tag);
  if (served?.recipe === recipe) return { ...served.image, expectedIndex };

  const tars = [
    await busyboxTar(variant),
    ...(await Promise.all(
      dataFiles.map((f) =>
        tarOf([
          { name: 'data/', type: 'directory' },
          { name: `data/${f.name}`, data: f.data },
        ]),
      ),
    )),
    await tarOf([
      { name: 'www/', type: 'directory' },
      { name: 'app/', type: 'directory' },
      { name: 'app/serve-sums.sh', data: Buffer.from(`${PROGRAM}\n`), mode: 0o755 },
    ]),
  ];
  // Level 1: the data does not compress, and the busybox layer is small either way.
  const layers = tars.map((tar) => {
    const gz = gzipSync(tar, { level: 1 });
    return { gz, blob: { digest: sha256(gz), size: gz.length }, diffId: sha256(tar) };
  });
  const config = Buffer.from(
    JSON.stringify({
      architecture: engineArchitecture(),
      os: 'linux',
      config: {
        Env: ['PATH=/bin'],
        Cmd: ['/bin/sh', '/app/serve-sums.sh'],
        ExposedPorts: { '80/tcp': {} },
        Labels: { [RECIPE_LABEL]: recipe },
      },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: EPOCH.toISOString(), created_by: 'test/e2e/support/big-image.ts' })),
    }),
  );
  const configBlob = { digest: sha256(config), size: config.length };
  for (const layer of layers) await pushBlob(repository, layer.gz, layer.blob.digest);
  await pushBlob(repository, config, configBlob.digest);
  const manifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_V2,
    config: { mediaType: CONFIG_TYPE, ...configBlob },
    layers: layers.map((l) => ({ mediaType: LAYER_TYPE, ...l.blob })),
  };
  const put = await fetch(`http://${TEST_REGISTRY}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': MANIFEST_V2 },
    body: JSON.stringify(manifest),
  });
  if (!put.ok) throw new Error(`PUT manifest ${repository}:${tag}: HTTP ${put.status} ${await put.text()}`);
  return { ...imageOf(repository, tag, configBlob, manifest.layers), expectedIndex };
}

function imageOf(repository: string, tag: string, config: Blob, layers: Blob[]): Omit<BigImage, 'expectedIndex'> {
  return {
    image: `${TEST_REGISTRY}/${repository}:${tag}`,
    repository,
    tag,
    config: { digest: config.digest, size: config.size },
    layers: layers.map(({ digest, size }) => ({ digest, size })),
    layerBytes: layers.reduce((sum, l) => sum + l.size, 0),
  };
}

/** What the registry serves under this tag, with its recipe label; undefined when it has no such tag. */
async function registryImage(
  repository: string,
  tag: string,
): Promise<{ image: Omit<BigImage, 'expectedIndex'>; recipe?: string } | undefined> {
  const res = await fetch(`http://${TEST_REGISTRY}/v2/${repository}/manifests/${tag}`, { headers: { accept: MANIFEST_V2 } });
  if (!res.ok) return undefined;
  const manifest = (await res.json()) as { config?: Blob; layers?: Blob[] };
  if (!manifest.config || !manifest.layers) return undefined;
  const blob = await fetch(`http://${TEST_REGISTRY}/v2/${repository}/blobs/${manifest.config.digest}`);
  if (!blob.ok) return undefined;
  const config = (await blob.json()) as { config?: { Labels?: Record<string, string> } };
  const recipe = config.config?.Labels?.[RECIPE_LABEL];
  return { image: imageOf(repository, tag, manifest.config, manifest.layers), ...(recipe ? { recipe } : {}) };
}

/** A monolithic upload: POST for an upload URL, then PUT the whole blob with its digest. */
async function pushBlob(repository: string, body: Buffer, digest: string): Promise<void> {
  const head = await fetch(`http://${TEST_REGISTRY}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
  if (head.ok) return;
  const started = await fetch(`http://${TEST_REGISTRY}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  const location = started.headers.get('location');
  if (started.status !== 202 || !location) throw new Error(`POST upload to ${repository}: HTTP ${started.status} ${await started.text()}`);
  const url = new URL(location, `http://${TEST_REGISTRY}`);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body });
  if (put.status !== 201) throw new Error(`PUT blob ${digest} to ${repository}: HTTP ${put.status} ${await put.text()}`);
}

interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  data?: Buffer;
  linkname?: string;
  mode?: number;
}

function tarOf(entries: Entry[]): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const done = new Promise<Buffer>((resolve, reject) => {
    tar.on('end', () => resolve(Buffer.concat(chunks)));
    tar.on('error', reject);
  });
  for (const { name, type = 'file', data, linkname, mode } of entries) {
    const header = { name, type, mtime: EPOCH, uid: 0, gid: 0, mode: mode ?? (type === 'file' ? 0o644 : 0o755) };
    if (type === 'file') tar.entry({ ...header, size: data!.length }, data!);
    else tar.entry({ ...header, ...(linkname ? { linkname } : {}) });
  }
  tar.finalize();
  return done;
}

/** /bin/busybox, a symlink per applet, /tmp, and a file naming the variant so each variant's base layer is its own. */
function busyboxTar(variant: string): Promise<Buffer> {
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
  return tarOf([
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
    ...applets.map((applet): Entry => ({ name: `bin/${applet}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    { name: 'etc/', type: 'directory' },
    { name: 'etc/flotilla-test-variant', data: Buffer.from(`${variant}\n`) },
  ]);
}

function busyboxIdentity(): string {
  return sha256(readFileSync(BUSYBOX));
}

/** `bytes` of AES-256-CTR keystream keyed by the seed: incompressible, and the same for the same seed. */
function pseudoRandom(seed: string, bytes: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(bytes)), cipher.final()]);
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The engine's platform as image configs name it (x64 → amd64). */
function engineArchitecture(): string {
  return { x64: 'amd64', arm64: 'arm64', arm: 'arm' }[process.arch as string] ?? process.arch;
}
