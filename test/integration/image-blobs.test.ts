/**
 * The agent's own blob download against the loopback docker-registry,
 * through a proxy that breaks the link the ways a thin one does: cuts,
 * stalls, a registry that ignores Range, bytes changed on the way. What a
 * user would observe is checked: the blobs on disk and their sha256, the
 * bytes the proxy had to send, the events reported, the error's code.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BlobStore } from '../../agent/images/blob-store.js';
import { type DownloadBlobsOptions, downloadBlobs, RESENT_REASONS } from '../../agent/images/download-blobs.js';
import { RegistrySession } from '../../agent/images/registry-session.js';
import { resolveImage } from '../../agent/images/resolve-image.js';
import { type BlobDescriptor, FetchError, type FetchEvent, type ResolvedImage } from '../../agent/images/types.js';
import { type RegistryProxy, startRegistryProxy } from '../support/registry-proxy.js';
import { type PushedImage, pushImage, randomLayer } from '../support/registry-push.js';
import { scratchDir } from '../support/scratch.js';

const KiB = 1024;
/** Short backoffs: the policy's shape is the same, the test just does not wait seconds per break. */
const RETRY = { initialDelayMs: 20, maxDelayMs: 200 };
const suffix = Date.now().toString(36);

let pushed: PushedImage;
let proxy: RegistryProxy | undefined;

beforeAll(async () => {
  // About 3.3 MB in three incompressible layers, the largest first.
  pushed = await pushImage({
    repository: 'flotilla-test/blobs',
    tag: `t-${suffix}`,
    layers: [randomLayer(1_800 * KiB), randomLayer(1_000 * KiB), randomLayer(400 * KiB)],
    config: { Cmd: ['/bin/true'] },
  });
});

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

interface Run {
  resolved: ResolvedImage;
  session: RegistrySession;
  store: BlobStore;
  dir: string;
  blobs: BlobDescriptor[];
  events: FetchEvent[];
}

/** Resolves the pushed image through a fresh proxy and opens a fresh content store. */
async function prepare(): Promise<Run> {
  proxy = await startRegistryProxy();
  const image = proxy.via(pushed.image);
  const session = new RegistrySession(image, undefined);
  const resolved = await resolveImage(image, undefined, { session, platform: { os: 'linux', architecture: 'amd64' } });
  const dir = scratchDir('flotilla-blobs-');
  return { resolved, session, store: await BlobStore.open(dir), dir, blobs: [resolved.config, ...resolved.layers], events: [] };
}

function download(run: Run, options: Partial<DownloadBlobsOptions> = {}) {
  return downloadBlobs(run.session, run.store, run.blobs, {
    signal: AbortSignal.timeout(60_000),
    retry: RETRY,
    onEvent: (event) => run.events.push(event),
    ...options,
  });
}

/** sha256 of what the store holds as complete for `digest`. */
async function storedDigest(store: BlobStore, digest: string): Promise<string> {
  return `sha256:${createHash('sha256')
    .update(await readFile(store.path(digest)))
    .digest('hex')}`;
}

async function fetchError(promise: Promise<unknown>): Promise<FetchError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FetchError);
  return err as FetchError;
}

function eventsOf<T extends FetchEvent['type']>(events: FetchEvent[], type: T): Extract<FetchEvent, { type: T }>[] {
  return events.filter((e): e is Extract<FetchEvent, { type: T }> => e.type === type);
}

describe('resolveImage', () => {
  it('reads the config and layer descriptors and the manifest digest as pushed', async () => {
    const { resolved } = await prepare();
    expect(resolved.manifestDigest).toBe(pushed.digest);
    expect(resolved.config).toMatchObject(pushed.config);
    expect(resolved.layers.map(({ digest, size }) => ({ digest, size }))).toEqual(
      pushed.layers.map(({ digest, size }) => ({ digest, size })),
    );
  });

  it('picks the platform from a manifest list, and says which platforms there are when this one is missing', async () => {
    const multi = await pushImage({
      repository: 'flotilla-test/blobs-multi',
      tag: `t-${suffix}`,
      layers: [randomLayer(10 * KiB)],
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const arm = await resolveImage(multi.image, undefined, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(arm.manifestDigest).toBe(multi.manifests[1]!.digest);
    expect(arm.config.digest).toBe(multi.manifests[1]!.config.digest);
    const err = await fetchError(resolveImage(multi.image, undefined, { platform: { os: 'linux', architecture: 'riscv64' } }));
    expect(err.code).toBe('not_found');
    expect(err.message).toContain('no manifest for linux/riscv64 in the manifest list (available: linux/amd64, linux/arm64)');
  });

  it('reports a missing tag as not_found', async () => {
    const image = `127.0.0.1:5000/flotilla-test/blobs:no-such-${suffix}`;
    const err = await fetchError(resolveImage(image, undefined));
    expect(err.code).toBe('not_found');
    expect(err.image).toBe(image);
  });
});

describe('downloadBlobs through a proxy that breaks the link', () => {
  it('stores every blob, verified, when the link is cut every 256 KiB, resuming where each cut left off', async () => {
    const run = await prepare();
    proxy!.cutEvery(256 * KiB);

    const summary = await download(run);

    for (const blob of run.blobs) {
      expect(await storedDigest(run.store, blob.digest)).toBe(blob.digest);
    }
    expect(await readdir(join(run.dir, 'partial'))).toEqual([]);
    expect(summary).toMatchObject({ received: pushed.blobBytes, resent: 0, fetched: 4, skipped: 0 });
    expect(proxy!.blobBytes).toBeLessThanOrEqual(1.05 * pushed.blobBytes);
    expect(eventsOf(run.events, 'resent')).toEqual([]);

    const big = pushed.layers[0]!;
    const offsets = eventsOf(run.events, 'resumed')
      .filter((e) => e.digest === big.digest)
      .map((e) => e.offset);
    // Each cut lands 256 KiB after the request began, and every byte sent before it is kept.
    expect(offsets).toEqual(Array.from({ length: Math.floor(big.size / (256 * KiB)) }, (_, i) => (i + 1) * 256 * KiB));
    expect(proxy!.blobBytes).toBe(pushed.blobBytes);
    expect(eventsOf(run.events, 'retry').map((e) => e.attempt)).toEqual(eventsOf(run.events, 'retry').map(() => 1));
  });

  it('breaks off a stalled request after stallTimeoutMs and resumes from where the bytes stopped', async () => {
    const run = await prepare();
    const big = pushed.layers[0]!;
    proxy!.stallOnce(700_000, big.digest);

    await download(run, { stallTimeoutMs: 1_000 });

    expect(await storedDigest(run.store, big.digest)).toBe(big.digest);
    expect(eventsOf(run.events, 'retry')).toEqual([expect.objectContaining({ digest: big.digest, error: 'no byte for 1 s' })]);
    expect(eventsOf(run.events, 'resumed')).toEqual([{ type: 'resumed', digest: big.digest, offset: 700_000 }]);
    expect(proxy!.bytesFor(big.digest)).toBe(big.size);
  });

  it('continues after an abort mid-blob from the stored offset, in a new store object on the same dir (an agent restart)', async () => {
    const run = await prepare();
    const big = pushed.layers[0]!;
    const controller = new AbortController();
    let received = 0;
    const first = download(run, {
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'received') received += event.bytes;
        if (received >= 600 * KiB) controller.abort(new Error('agent stopping'));
      },
    });
    await expect(first).rejects.toThrow('agent stopping');
    const stored = await run.store.partialSize(big.digest);
    expect(stored).toBeGreaterThanOrEqual(600 * KiB - pushed.config.size);
    expect(await run.store.has(big.digest)).toBe(false);

    proxy!.resetCounts();
    const restarted: Run = { ...run, store: await BlobStore.open(run.dir), events: [] };
    const summary = await download(restarted);

    expect(eventsOf(restarted.events, 'resumed')).toEqual([{ type: 'resumed', digest: big.digest, offset: stored }]);
    const deliveries = proxy!.deliveries.filter((d) => d.digest === big.digest);
    expect(deliveries).toEqual([expect.objectContaining({ status: 206, start: stored, sent: big.size - stored, end: 'complete' })]);
    expect(summary.received).toBe(pushed.blobBytes - stored - pushed.config.size);
    expect(summary.skipped).toBe(1); // the config, completed before the abort
    for (const blob of run.blobs) expect(await storedDigest(restarted.store, blob.digest)).toBe(blob.digest);
  });

  it('fetches a blob whole once the registry ignores Range, and says so', async () => {
    const run = await prepare();
    const big = pushed.layers[0]!;
    proxy!.ignoreRange(true);
    proxy!.stallOnce(300_000, big.digest);

    const summary = await download(run, { stallTimeoutMs: 1_000 });

    expect(await storedDigest(run.store, big.digest)).toBe(big.digest);
    expect(eventsOf(run.events, 'whole-blob')).toEqual([{ type: 'whole-blob', digest: big.digest }]);
    expect(eventsOf(run.events, 'resent')).toEqual([
      { type: 'resent', digest: big.digest, bytes: 300_000, reason: RESENT_REASONS.rangeIgnored },
    ]);
    expect(eventsOf(run.events, 'resumed')).toEqual([]);
    expect(summary.resent).toBe(300_000);
    expect(proxy!.deliveries.filter((d) => d.digest === big.digest).map((d) => [d.range, d.status, d.start])).toEqual([
      [undefined, 200, 0],
      ['bytes=300000-', 200, 0],
    ]);
  });

  it('gives up as not_resumable when the registry ignores Range and whole downloads keep breaking', async () => {
    const run = await prepare();
    const big = pushed.layers[0]!;
    proxy!.ignoreRange(true);
    proxy!.cutEvery(256 * KiB);

    const err = await fetchError(download(run, { retry: { ...RETRY, wholeBlobBreaks: 3 } }));

    expect(err.code).toBe('not_resumable');
    expect(err.message).toContain(big.digest);
    expect(err.message).toContain('the registry ignores Range');
    expect(await run.store.has(big.digest)).toBe(false);
    expect(eventsOf(run.events, 'whole-blob')).toHaveLength(1);
  });

  it('detects a blob corrupted on the way by its digest, drops it and fetches it again', async () => {
    const run = await prepare();
    const layer = pushed.layers[1]!;
    proxy!.corrupt(layer.digest, 1);

    const summary = await download(run);

    expect(await storedDigest(run.store, layer.digest)).toBe(layer.digest);
    expect(eventsOf(run.events, 'resent')).toEqual([
      { type: 'resent', digest: layer.digest, bytes: layer.size, reason: RESENT_REASONS.digestMismatch },
    ]);
    expect(summary.resent).toBe(layer.size);
    expect(proxy!.deliveries.filter((d) => d.digest === layer.digest).map((d) => d.corrupted)).toEqual([true, false]);
  });

  it('gives up as bad_response naming the digest when a blob arrives corrupted every time, and never stores it as complete', async () => {
    const run = await prepare();
    const layer = pushed.layers[1]!;
    proxy!.corrupt(layer.digest, Number.POSITIVE_INFINITY);

    const err = await fetchError(download(run));

    expect(err.code).toBe('bad_response');
    expect(err.message).toContain(`blob ${layer.digest}`);
    expect(await run.store.has(layer.digest)).toBe(false);
    expect(await run.store.partialSize(layer.digest)).toBe(0);
    expect(eventsOf(run.events, 'resent').map((e) => e.reason)).toEqual([RESENT_REASONS.digestMismatch, RESENT_REASONS.digestMismatch]);
  });

  it('skips blobs the store already holds', async () => {
    const run = await prepare();
    await download(run);
    proxy!.resetCounts();
    const again = await download({ ...run, events: [] });
    expect(again).toMatchObject({ received: 0, fetched: 0, skipped: 4 });
    expect(proxy!.blobBytes).toBe(0);
  });
});

describe('downloadBlobs from a registry that redirects blobs to storage', () => {
  it('follows the redirect, keeping Range, and dropping the credential for the other host', async () => {
    const seen: { path: string; range?: string; authorization?: string }[] = [];
    // A registry front that sends every blob request to where the bytes are (another host:port), as S3-backed registries do.
    const front = createServer((req, res) => {
      seen.push({ path: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization });
      if (req.headers.authorization !== 'Basic dTpw') {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="front"' }).end();
        return;
      }
      res.writeHead(307, { location: `http://${proxy!.host}${req.url}` }).end();
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    proxy = await startRegistryProxy();
    try {
      const image = `127.0.0.1:${(front.address() as AddressInfo).port}/${pushed.repository}:${pushed.tag}`;
      const session = new RegistrySession(image, { username: 'u', password: 'p' });
      const store = await BlobStore.open(scratchDir('flotilla-blobs-'));
      const layer = pushed.layers[2]!;
      const part = await store.openPartial(layer.digest, 0);
      const upstream = await fetch(`http://127.0.0.1:5000/v2/${pushed.repository}/blobs/${layer.digest}`);
      await part.write(Buffer.from(await upstream.arrayBuffer()).subarray(0, 100_000));
      await part.close();
      const events: FetchEvent[] = [];

      await downloadBlobs(session, store, [layer], { signal: AbortSignal.timeout(30_000), onEvent: (e) => events.push(e) });

      expect(await storedDigest(store, layer.digest)).toBe(layer.digest);
      expect(eventsOf(events, 'resumed')).toEqual([{ type: 'resumed', digest: layer.digest, offset: 100_000 }]);
      expect(eventsOf(events, 'resent')).toEqual([]);
      expect(seen.map((r) => [r.range, r.authorization])).toEqual([
        ['bytes=100000-', undefined],
        ['bytes=100000-', 'Basic dTpw'],
      ]);
      expect(proxy!.deliveries).toEqual([
        expect.objectContaining({ range: 'bytes=100000-', authorized: false, status: 206, start: 100_000 }),
      ]);
    } finally {
      front.closeAllConnections();
      await new Promise((resolve) => front.close(resolve));
    }
  });
});

describe('downloadBlobs failures', () => {
  it('fails at once with not_found for a blob the registry does not have', async () => {
    const run = await prepare();
    const missing = { digest: `sha256:${'0'.repeat(64)}`, size: 10 };
    const err = await fetchError(download({ ...run, blobs: [missing] }));
    expect(err.code).toBe('not_found');
    expect(err.message).toContain(`blob ${missing.digest}`);
    expect(eventsOf(run.events, 'retry')).toEqual([]);
  });

  it('retries a registry that went away, then gives up as unreachable', async () => {
    const run = await prepare();
    await proxy!.close();
    const err = await fetchError(download(run, { retry: { initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 4 } }));
    expect(err.code).toBe('unreachable');
    expect(err.message).toContain('4 attempts in a row received nothing');
    expect(eventsOf(run.events, 'retry').map((e) => e.attempt)).toEqual([1, 2, 3]);
  });

  it('reports a content store it cannot write as store_failed', async () => {
    const run = await prepare();
    // A directory where the partial file should go: opening it for writing fails (EISDIR).
    await mkdir(join(run.dir, 'partial', `sha256-${run.resolved.config.digest.slice(7)}`));
    const err = await fetchError(download(run));
    expect(err.code).toBe('store_failed');
    expect(err.message).toContain(run.dir);
  });
});
