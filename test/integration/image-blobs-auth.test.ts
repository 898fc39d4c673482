/**
 * Blob downloads from a registry that wants Basic credentials: a private
 * docker-registry with htpasswd, no Docker Engine needed. The credential
 * the session answered the first challenge with serves every later request,
 * resumed ones included; without it, blobs are refused as unauthorized.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BlobStore } from '../../agent/images/blob-store.js';
import { downloadBlobs } from '../../agent/images/download-blobs.js';
import { RegistrySession } from '../../agent/images/registry-session.js';
import { resolveImage } from '../../agent/images/resolve-image.js';
import { FetchError, type FetchEvent } from '../../agent/images/types.js';
import { type PasswordRegistry, startPasswordRegistry } from '../support/password-registry.js';
import { type RegistryProxy, startRegistryProxy } from '../support/registry-proxy.js';
import { type PushedImage, pushImage, randomLayer } from '../support/registry-push.js';
import { scratchDir } from '../support/scratch.js';

const PLATFORM = { os: 'linux', architecture: 'amd64' };

let registry: PasswordRegistry;
let pushed: PushedImage;
let proxy: RegistryProxy | undefined;

beforeAll(async () => {
  registry = await startPasswordRegistry();
  pushed = await pushImage({
    registry: registry.host,
    repository: 'flotilla-test/private-blobs',
    tag: 'v1',
    layers: [randomLayer(600 * 1024), randomLayer(50 * 1024)],
    auth: { username: registry.username, password: registry.password },
  });
}, 60_000);

afterAll(async () => {
  await registry?.stop();
});

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

async function fetchError(promise: Promise<unknown>): Promise<FetchError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FetchError);
  return err as FetchError;
}

describe('downloadBlobs from a registry with password auth', () => {
  it('downloads every blob with the credentials, resuming through cuts with the same credential', async () => {
    proxy = await startRegistryProxy({ target: registry.host });
    proxy.cutEvery(128 * 1024);
    const image = proxy.via(pushed.image);
    const auth = { username: registry.username, password: registry.password };
    const session = new RegistrySession(image, auth);
    const resolved = await resolveImage(image, auth, { session, platform: PLATFORM });
    const store = await BlobStore.open(scratchDir('flotilla-blobs-auth-'));
    const events: FetchEvent[] = [];

    await downloadBlobs(session, store, [resolved.config, ...resolved.layers], {
      signal: AbortSignal.timeout(30_000),
      retry: { initialDelayMs: 10 },
      onEvent: (event) => events.push(event),
    });

    for (const blob of [pushed.config, ...pushed.layers]) {
      const bytes = await readFile(store.path(blob.digest));
      expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(blob.digest);
    }
    expect(events.filter((e) => e.type === 'resumed').length).toBeGreaterThanOrEqual(4);
    expect(proxy.blobBytes).toBe(pushed.blobBytes);
  });

  it('is unauthorized without credentials or with a wrong password, naming the image', async () => {
    const missing = await fetchError(resolveImage(pushed.image, undefined, { platform: PLATFORM }));
    expect(missing.code).toBe('unauthorized');
    expect(missing.message).toBe(`cannot read the manifest of ${pushed.image}: 401 the registry requires credentials and none were given`);

    const wrong = await fetchError(resolveImage(pushed.image, { username: registry.username, password: 'wrong' }, { platform: PLATFORM }));
    expect(wrong.code).toBe('unauthorized');
    expect(wrong.image).toBe(pushed.image);
  });

  it('refuses a blob as unauthorized at once when the session has no credentials', async () => {
    const store = await BlobStore.open(scratchDir('flotilla-blobs-auth-'));
    const events: FetchEvent[] = [];
    const layer = pushed.layers[0]!;
    const err = await fetchError(
      downloadBlobs(new RegistrySession(pushed.image, undefined), store, [layer], {
        signal: AbortSignal.timeout(30_000),
        onEvent: (event) => events.push(event),
      }),
    );
    expect(err.code).toBe('unauthorized');
    expect(err.message).toContain(`cannot read blob ${layer.digest} of ${pushed.image}: 401`);
    expect(events).toEqual([]);
    expect(await store.partialSize(layer.digest)).toBe(0);
  });
});
