/**
 * The agent's own fetch of an image, end to end on a real Docker Engine:
 * images pushed to the loopback registry through its HTTP API (runnable,
 * FROM scratch with the static busybox), fetched by fetchImage through a
 * counting proxy, loaded by the engine, run.
 *
 * What the engine does with the archive is checked here, not assumed:
 * - the image ID is the config blob's digest, and the chains the engine keeps
 *   (its layerdb) are the chain IDs chain-id.ts computes;
 * - an archive that leaves out a layer whose chain the engine holds loads
 *   (the engine never opens the missing file), and that layer is never
 *   downloaded;
 * - a config whose diff_ids lie is refused, in the engine's words, and
 *   nothing of it is claimed present.
 * A digest reference, which an archive cannot carry, goes through the
 * runtime's aliases: present, created from, observed as the reference, removed;
 * its keep tag (which `docker image prune` respects) goes with the last
 * reference that shares it.
 *
 * Every test pushes images of its own (a random file in the base layer), so no
 * layer of one is ever in the engine before it fetches it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { BlobStore } from '../../agent/images/blob-store.js';
import { chainIds } from '../../agent/images/chain-id.js';
import { DockerEngineImages, EngineLoadError } from '../../agent/images/engine-load.js';
import { type FetchedImage, fetchImage } from '../../agent/images/fetch-image.js';
import { ImageAliases } from '../../agent/images/image-aliases.js';
import { FetchError, type FetchEvent } from '../../agent/images/types.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { Cleanup } from '../support/cleanup.js';
import { type RegistryProxy, startRegistryProxy } from '../support/registry-proxy.js';
import { gzipLayer, type PushedImage, pushImage, randomLayer, sha256 } from '../support/registry-push.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';
import { docker } from './support/docker-cli.js';
import { describeDocker, TEST_REGISTRY } from './support/engine.js';

const BUSYBOX = process.env.FLOTILLA_TEST_BUSYBOX ?? '/bin/busybox';
const RUN = randomBytes(4).toString('hex');
const REPOSITORY = `flotilla-test/image-load-${RUN}`;
const DEVICE = `image-load-${RUN}`;

describeDocker('the agent fetches an image into the Docker Engine', () => {
  const cleanup = new Cleanup();
  const dockerode = new Dockerode();
  const engine = new DockerEngineImages(dockerode);
  let proxy: RegistryProxy;
  let layerdb: string;

  beforeAll(async () => {
    proxy = await startRegistryProxy({ target: TEST_REGISTRY });
    const [root, driver] = (await docker('info', '--format', '{{.DockerRootDir}} {{.Driver}}')).split(' ');
    layerdb = join(root ?? '/var/lib/docker', 'image', driver ?? 'overlay2', 'layerdb', 'sha256');
  });
  afterAll(() => proxy?.close());
  afterEach(async () => {
    await cleanup.run();
    proxy.resetCounts();
  });

  /** A base image: the static busybox (sh, cat, echo) and a file no other test's base has. */
  async function pushBase(name: string): Promise<PushedImage> {
    const layer = gzipLayer([
      { path: 'bin', type: 'dir' },
      { path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
      ...['sh', 'cat', 'echo'].map((tool) => ({ path: `bin/${tool}`, type: 'symlink' as const, target: 'busybox' })),
      { path: 'etc', type: 'dir' },
      { path: 'etc/base-id', data: `${name}-${RUN}-${randomBytes(8).toString('hex')}\n` },
    ]);
    return pushImage({ repository: REPOSITORY, tag: `${name}-base`, layers: [layer] });
  }

  /** An image on `base` whose command prints `message`. */
  function pushApp(tag: string, base: PushedImage, message: string, extra: Buffer[] = []): Promise<PushedImage> {
    return pushImage({
      repository: REPOSITORY,
      tag,
      base: base.image,
      layers: [gzipLayer([{ path: 'msg', data: `${message}\n` }]), ...extra],
      config: { Cmd: ['cat', '/msg'] },
    });
  }

  async function openStore(): Promise<BlobStore> {
    return BlobStore.open(scratchDir('flotilla-image-store-'));
  }

  /** Fetches through the proxy, collecting events; the image is removed from the engine after the test. */
  async function fetchVia(
    image: string,
    store: BlobStore,
    aliases: ImageAliases,
    options: { signal?: AbortSignal; onEvent?: (event: FetchEvent) => void } = {},
  ): Promise<{ fetched: FetchedImage; events: FetchEvent[] }> {
    const events: FetchEvent[] = [];
    const fetched = await fetchImage(
      image,
      undefined,
      { engine, store, aliases },
      {
        signal: options.signal ?? AbortSignal.timeout(60_000),
        onEvent: (event) => {
          events.push(event);
          options.onEvent?.(event);
        },
      },
    );
    cleanup.add(`remove ${image}`, () => docker('rmi', '-f', fetched.imageId).catch(() => undefined));
    return { fetched, events };
  }

  /** Runs the image once with its own command and returns what it printed. */
  async function runOnce(image: string): Promise<string> {
    const name = `image-load-${RUN}-${randomBytes(3).toString('hex')}`;
    cleanup.add(`remove container ${name}`, () => docker('rm', '-f', name).catch(() => undefined));
    return docker('run', '--name', name, image);
  }

  async function imageId(reference: string): Promise<string | undefined> {
    return docker('image', 'inspect', '--format', '{{.Id}}', reference).catch(() => undefined);
  }

  it('loads an image the engine lacks under its tag, with the config digest as its ID, and it runs', async () => {
    const base = await pushBase('first');
    const app = await pushApp('first', base, 'hello from the first image');
    const image = proxy.via(app.image);
    const store = await openStore();

    const { fetched, events } = await fetchVia(image, store, ImageAliases.inDataDir(scratchDir('flotilla-agent-data-')));

    expect(await imageId(image)).toBe(app.config.digest);
    expect(fetched.imageId).toBe(app.config.digest);
    expect(await runOnce(image)).toBe('hello from the first image');
    // Nothing was the engine's before: every blob came over the wire, once.
    expect(events.find((e) => e.type === 'planned')).toEqual({
      type: 'planned',
      total: app.blobBytes,
      reusedBytes: 0,
      blobs: 3,
      storedBytes: 0,
    });
    expect(events.at(-1)).toEqual({ type: 'loading' });
    expect(proxy.blobBytes).toBe(app.blobBytes);
    // The engine holds the blobs now; the store keeps none of them.
    expect(await store.bytesStored()).toBe(0);

    // The chains the engine keeps for this image are the ones chain-id.ts computes.
    const layers = JSON.parse(await docker('image', 'inspect', '--format', '{{json .RootFS.Layers}}', image)) as string[];
    expect(layers).toEqual(app.layers.map((layer) => layer.diffId));
    const chains = chainIds(layers);
    chains.forEach((chain, i) => {
      const dir = join(layerdb, chain.slice('sha256:'.length));
      expect(existsSync(dir), `layerdb entry of chain ${chain}`).toBe(true);
      expect(readFileSync(join(dir, 'diff'), 'utf8').trim()).toBe(layers[i]);
    });
    const held = await engine.layerChains();
    for (const chain of chains) expect(held.has(chain)).toBe(true);
  });

  it('downloads only the layer the engine lacks, and the engine loads an archive without the base layer', async () => {
    const base = await pushBase('shared');
    const first = await pushApp('shared-a', base, 'image a');
    const second = await pushApp('shared-b', base, 'image b');
    const [baseLayer] = base.layers;
    const ownLayer = second.layers.at(-1)!;
    const store = await openStore();
    const aliases = ImageAliases.inDataDir(scratchDir('flotilla-agent-data-'));
    await fetchVia(proxy.via(first.image), store, aliases);
    proxy.resetCounts();

    const { fetched, events } = await fetchVia(proxy.via(second.image), store, aliases);

    expect(events.find((e) => e.type === 'planned')).toEqual({
      type: 'planned',
      total: second.config.size + ownLayer.size,
      reusedBytes: baseLayer!.size,
      blobs: 2,
      storedBytes: 0,
    });
    // What the registry sent: the config and the new layer, nothing of the base.
    expect(proxy.bytesFor(baseLayer!.digest)).toBe(0);
    expect(proxy.bytesFor(ownLayer.digest)).toBe(ownLayer.size);
    expect(proxy.blobBytes).toBe(second.config.size + ownLayer.size);
    expect(fetched).toMatchObject({ received: second.config.size + ownLayer.size, reusedBytes: baseLayer!.size, resent: 0 });
    expect(await imageId(proxy.via(second.image))).toBe(second.config.digest);
    expect(await runOnce(proxy.via(second.image))).toBe('image b');
  });

  it('continues an aborted download from what it stored', async () => {
    const base = await pushBase('abort');
    const big = randomLayer(3 * 1024 * 1024);
    const app = await pushApp('abort', base, 'fetched in two goes', [big]);
    const bigLayer = app.layers.at(-1)!;
    const image = proxy.via(app.image);
    const store = await openStore();
    const aliases = ImageAliases.inDataDir(scratchDir('flotilla-agent-data-'));
    const controller = new AbortController();
    const reason = new Error('the agent is stopping');
    let planned = false;
    let receivedOfBig = 0;

    const first = fetchVia(image, store, aliases, {
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'planned') planned = true;
        // Abort once the big layer, the last blob, is well under way.
        if (planned && event.type === 'received' && proxy.bytesFor(bigLayer.digest) > 0) {
          receivedOfBig += event.bytes;
          if (receivedOfBig > 256 * 1024) controller.abort(reason);
        }
      },
    });

    await expect(first).rejects.toBe(reason);
    const stored = await store.partialSize(bigLayer.digest);
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThan(bigLayer.size);
    expect(await imageId(image)).toBeUndefined();

    proxy.resetCounts();
    const { fetched, events } = await fetchVia(image, store, aliases);
    expect(events).toContainEqual({ type: 'resumed', digest: bigLayer.digest, offset: stored });
    // The config and the two small layers were complete; of the big one, what the first go wrote.
    expect(events.find((e) => e.type === 'planned')).toEqual({
      type: 'planned',
      total: app.blobBytes,
      reusedBytes: 0,
      blobs: 4,
      storedBytes: app.blobBytes - bigLayer.size + stored,
    });
    // The second go asked only for the rest of the big layer.
    expect(proxy.blobBytes).toBe(bigLayer.size - stored);
    expect(fetched.received).toBe(bigLayer.size - stored);
    expect(await runOnce(image)).toBe('fetched in two goes');
  });

  it('resolves a digest reference through its alias: present, run, observed as the reference, removed', async () => {
    const base = await pushBase('digest');
    const app = await pushApp('digest', base, 'by digest');
    const reference = `${proxy.host}/${REPOSITORY}@${app.digest}`;
    const store = await openStore();
    const dataDir = scratchDir('flotilla-agent-data-');
    const aliases = ImageAliases.inDataDir(dataDir);
    const runtime = new DockerRuntime(dockerode, undefined, { deviceId: DEVICE, imageAliases: aliases });
    cleanup.add('remove the containers', async () => {
      const ids = (await docker('ps', '-aq', '--filter', `label=flotilla.device=${DEVICE}`)).split('\n').filter(Boolean);
      if (ids.length > 0) await docker('rm', '-f', ...ids);
    });
    expect(await runtime.hasImage(reference)).toBe(false);

    await fetchVia(reference, store, aliases);

    // The engine itself does not know the reference (an archive cannot carry a digest); the runtime does.
    expect(await imageId(reference)).toBeUndefined();
    expect(await aliases.get(reference)).toBe(app.config.digest);
    expect(await runtime.hasImage(reference)).toBe(true);

    const id = await runtime.create({
      deviceId: DEVICE,
      namePrefix: `${DEVICE}-`,
      app: 'bydigest',
      appRevision: 1,
      specHash: 'h2',
      spec: { name: 'main', image: reference, restartPolicy: { name: 'no' } },
    });
    await runtime.start(id);
    const exited = await waitFor('the container to exit', async () =>
      (await runtime.listManaged()).find((c) => c.id === id && c.state === 'exited'),
    );
    expect(exited.exitCode).toBe(0);
    expect(exited.image).toBe(reference);
    expect((await runtime.tailLogs(id, 10, 1024)).map((entry) => entry.line)).toEqual(['by digest']);

    await runtime.remove(id);
    await runtime.removeImage(reference);
    expect(await imageId(app.config.digest)).toBeUndefined();
    expect(await runtime.hasImage(reference)).toBe(false);
    // Forgotten on disk too: the next agent process does not find it.
    expect(await ImageAliases.inDataDir(dataDir).get(reference)).toBeUndefined();
  });

  it('keeps an image two digest references share until the second is removed: they share its keep tag', async () => {
    const base = await pushBase('shared');
    const app = await pushApp('shared', base, 'shared by two references');
    const plain = `${proxy.host}/${REPOSITORY}@${app.digest}`;
    const tagged = `${proxy.host}/${REPOSITORY}:shared@${app.digest}`;
    const keep = `${proxy.host}/${REPOSITORY}:flotilla-${app.digest.replace(':', '-')}`;
    const store = await openStore();
    const aliases = ImageAliases.inDataDir(scratchDir('flotilla-agent-data-'));
    const runtime = new DockerRuntime(dockerode, undefined, { deviceId: DEVICE, imageAliases: aliases });

    await fetchVia(plain, store, aliases);
    await fetchVia(tagged, store, aliases);
    expect(JSON.parse(await docker('image', 'inspect', '--format', '{{json .RepoTags}}', app.config.digest))).toEqual([keep]);

    await runtime.removeImage(plain);
    expect(await imageId(keep)).toBe(app.config.digest);
    expect(await runtime.hasImage(tagged)).toBe(true);
    expect(await runtime.hasImage(plain)).toBe(false);

    await runtime.removeImage(tagged);
    expect(await imageId(app.config.digest)).toBeUndefined();
    expect(await runtime.hasImage(tagged)).toBe(false);
  });

  it('reports a refused archive as load_failed in the engine words, and claims nothing of it present', async () => {
    const base = await pushBase('lie');
    const honest = await pushApp('honest', base, 'never loaded');
    const lying = await pushLyingConfig(honest, 'lie');
    const image = proxy.via(lying.image);
    const store = await openStore();
    const aliases = ImageAliases.inDataDir(scratchDir('flotilla-agent-data-'));
    const runtime = new DockerRuntime(dockerode, undefined, { deviceId: DEVICE, imageAliases: aliases });

    const err = await fetchVia(image, store, aliases).then(
      () => undefined,
      (e: unknown) => e,
    );

    expect(err).toBeInstanceOf(FetchError);
    expect((err as FetchError).code).toBe('load_failed');
    expect((err as FetchError).image).toBe(image);
    expect((err as FetchError).message).toMatch(
      /^the engine refused the image .*: invalid diffID for layer 1: expected "sha256:0{64}", got "sha256:[0-9a-f]{64}"$/,
    );
    expect(await imageId(image)).toBeUndefined();
    expect(await imageId(lying.configDigest)).toBeUndefined();
    expect(await runtime.hasImage(image)).toBe(false);
    // The lying layer's chain is not among the engine's; the blobs stay for another attempt.
    const lyingChain = chainIds(lying.diffIds).at(-1)!;
    expect((await engine.layerChains()).has(lyingChain)).toBe(false);
    expect(await store.has(honest.layers.at(-1)!.digest)).toBe(true);
  });

  it("passes on the engine's refusal of something that is not an archive, and stops a load on abort, closing the archive", async () => {
    const garbage = Readable.from([Buffer.from('not a tar archive '.repeat(200))]);
    const refused = await engine.load(garbage, AbortSignal.timeout(30_000)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(EngineLoadError);
    expect((refused as EngineLoadError).engineMessage).toMatch(/invalid tar header/);

    // An archive that never ends: the engine waits for the rest until the abort.
    const endless = new PassThrough();
    endless.write(Buffer.alloc(4096));
    const controller = new AbortController();
    const reason = new Error('the agent is stopping');
    const loading = engine.load(endless, controller.signal);
    await waitFor('the engine to read the archive', () => endless.readableLength === 0);
    controller.abort(reason);
    await expect(loading).rejects.toBe(reason);
    expect(endless.destroyed).toBe(true);
  });
});

/**
 * Puts `image`'s layers under a new tag with a config whose last diff_id is zeros: the registry
 * serves it (it never opens configs), the engine must not load it.
 */
async function pushLyingConfig(image: PushedImage, tag: string): Promise<{ image: string; configDigest: string; diffIds: string[] }> {
  const registry = `http://${image.registry}/v2/${image.repository}`;
  const config = (await (await fetch(`${registry}/blobs/${image.config.digest}`)).json()) as { rootfs: { diff_ids: string[] } };
  const diffIds = [...config.rootfs.diff_ids.slice(0, -1), `sha256:${'0'.repeat(64)}`];
  const body = Buffer.from(JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const configDigest = sha256(body);
  const started = await fetch(`${registry}/blobs/uploads/`, { method: 'POST' });
  expect(started.status).toBe(202);
  const location = new URL(started.headers.get('location') ?? '', registry);
  location.searchParams.set('digest', configDigest);
  const put = await fetch(location, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' } });
  expect(put.status).toBe(201);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: configDigest, size: body.length },
    layers: image.layers.map(({ digest, size }) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest, size })),
  };
  const putManifest = await fetch(`${registry}/manifests/${tag}`, {
    method: 'PUT',
    body: JSON.stringify(manifest),
    headers: { 'content-type': manifest.mediaType },
  });
  expect(putManifest.status).toBe(201);
  return { image: `${image.registry}/${image.repository}:${tag}`, configDigest, diffIds };
}
