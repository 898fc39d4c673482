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
 * images are pushed through the registry's HTTP API (test/support/registry-push.ts), no engine involved, at
 * most once per recipe: the config carries the recipe's hash as a label, and a
 * registry already serving it is left alone. Nothing is left in the engine:
 * tests download them.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipLayer, pushImage, sha256, type TarEntry } from '../../support/registry-push.js';
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

  const pushed = await pushImage({
    registry: TEST_REGISTRY,
    repository,
    tag,
    layers: [
      busyboxLayer(variant),
      ...dataFiles.map((f) =>
        gzipLayer([
          { path: 'data', type: 'dir' },
          { path: `data/${f.name}`, data: f.data },
        ]),
      ),
      gzipLayer([
        { path: 'www', type: 'dir' },
        { path: 'app', type: 'dir' },
        { path: 'app/serve-sums.sh', data: `${PROGRAM}\n`, mode: 0o755 },
      ]),
    ],
    config: {
      Env: ['PATH=/bin'],
      Cmd: ['/bin/sh', '/app/serve-sums.sh'],
      ExposedPorts: { '80/tcp': {} },
      Labels: { [RECIPE_LABEL]: recipe },
    },
  });
  return { ...imageOf(repository, tag, pushed.config, pushed.layers), expectedIndex };
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

/** /bin/busybox, a symlink per applet, /tmp, and a file naming the variant so each variant's base layer is its own. */
function busyboxLayer(variant: string): Buffer {
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
  return gzipLayer([
    { path: 'bin', type: 'dir' },
    { path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
    ...applets.map((applet): TarEntry => ({ path: `bin/${applet}`, type: 'symlink', target: 'busybox' })),
    { path: 'tmp', type: 'dir', mode: 0o1777 },
    { path: 'etc', type: 'dir' },
    { path: 'etc/flotilla-test-variant', data: `${variant}\n` },
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
