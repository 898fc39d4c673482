/**
 * imageDownloadSize against real registries: the loopback docker-registry
 * (open, and with htpasswd auth), a closed port, and a small node:http
 * registry that speaks the Bearer token flow (docker-registry cannot do
 * that without a separate token server). The fake registry needs no Docker,
 * so its cases run everywhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { imageDownloadSize, localPlatform, RegistryError } from '../../agent/runtime/registry-client.js';
import { Cleanup } from '../support/cleanup.js';
import { freePort } from '../support/ports.js';
import { type AuthRegistry, startAuthRegistry } from './support/auth-registry.js';
import { docker } from './support/docker-cli.js';
import { describeDocker, TEST_REGISTRY } from './support/engine.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const suffix = randomBytes(4).toString('hex');
const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

/** Settles `promise` and returns the RegistryError it rejected with (fails the test if it resolved or threw something else). */
async function registryError(promise: Promise<unknown>): Promise<RegistryError> {
  const outcome = await promise.then(
    (value) => ({ resolved: true as const, value }),
    (err: unknown) => ({ resolved: false as const, err }),
  );
  if (outcome.resolved) throw new Error(`expected a RegistryError, but got ${JSON.stringify(outcome.value)}`);
  expect(outcome.err).toBeInstanceOf(RegistryError);
  return outcome.err as RegistryError;
}

/** The test's own reading of a manifest, with nothing but fetch: config size plus layer sizes, and the digest. */
async function sizeFromManifest(image: string): Promise<{ size: number; digest: string }> {
  const slash = image.indexOf('/');
  const colon = image.lastIndexOf(':');
  const url = `http://${image.slice(0, slash)}/v2/${image.slice(slash + 1, colon)}/manifests/${image.slice(colon + 1)}`;
  const res = await fetch(url, { headers: { accept: MANIFEST_V2 } });
  expect(res.status).toBe(200);
  const manifest = (await res.json()) as { config: { size: number }; layers: { size: number }[] };
  return {
    size: manifest.config.size + manifest.layers.reduce((sum, layer) => sum + layer.size, 0),
    digest: res.headers.get('docker-content-digest') ?? '',
  };
}

describeDocker('imageDownloadSize against the loopback registry', () => {
  let images: TestImages;
  const cleanup = new Cleanup();

  beforeAll(async () => {
    images = await ensureTestImages();
  }, 180_000);

  afterEach(() => cleanup.run());

  it('is the sum of the config and layer sizes in the manifest', async () => {
    const expected = await sizeFromManifest(images.v1);
    expect(expected.size).toBeGreaterThan(100_000);

    const started = Date.now();
    const size = await imageDownloadSize(images.v1, undefined);
    const elapsed = Date.now() - started;

    expect(size).toBe(expected.size);
    // Two small loopback requests at most; the lead budgets for this before every pull.
    expect(elapsed).toBeLessThan(2_000);
  });

  it('reads a digest reference the same way', async () => {
    const { size, digest } = await sizeFromManifest(images.v1);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const repository = images.v1.slice(0, images.v1.lastIndexOf(':'));
    expect(await imageDownloadSize(`${repository}@${digest}`, undefined)).toBe(size);
  });

  it('is within a sane range of the size Docker reports once the image is pulled', async () => {
    // A tag of our own, so pulling and removing it never touches another test file's copy of web:v1.
    const image = await retagInRegistry(images.v1, `size-${suffix}`);
    const size = await imageDownloadSize(image, undefined);

    await docker('pull', '-q', image);
    cleanup.add('remove pulled image', () => docker('rmi', image).catch(() => undefined));
    const dockerSize = Number(await docker('image', 'inspect', '--format', '{{.Size}}', image));

    expect(dockerSize).toBeGreaterThan(0);
    // The manifest counts compressed layers, Docker the unpacked ones: only the order of magnitude can match.
    expect(size).toBeGreaterThan(100_000);
    expect(size).toBeLessThanOrEqual(2 * dockerSize);
  });

  it('reports a missing tag as not_found, naming the image', async () => {
    const image = `${TEST_REGISTRY}/flotilla-test/web:no-such-tag-${suffix}`;
    const err = await registryError(imageDownloadSize(image, undefined));
    expect(err.code).toBe('not_found');
    expect(err.statusCode).toBe(404);
    expect(err.image).toBe(image);
    expect(err.message).toBe(`cannot read the manifest of ${image}: 404 manifest unknown`);
  });

  it('reports a missing repository as not_found', async () => {
    const image = `${TEST_REGISTRY}/flotilla-test/no-such-repo-${suffix}:v1`;
    const err = await registryError(imageDownloadSize(image, undefined));
    expect(err.code).toBe('not_found');
    expect(err.message).toContain(`cannot read the manifest of ${image}: 404`);
  });
});

describe('imageDownloadSize when the registry cannot be reached', () => {
  let silent: Server | undefined;

  afterEach(async () => {
    if (silent) await closeServer(silent);
    silent = undefined;
  });

  it('reports a closed port as unreachable', async () => {
    const port = await freePort(); // bound, then closed: nothing listens there now
    const image = `127.0.0.1:${port}/flotilla-test/web:v1`;
    const err = await registryError(imageDownloadSize(image, undefined));
    expect(err.code).toBe('unreachable');
    expect(err.message).toMatch(
      new RegExp(`^cannot read the manifest of ${escapeRegExp(image)}: registry 127\\.0\\.0\\.1:${port} unreachable \\(.*ECONNREFUSED`),
    );
  });

  it('gives up on a registry that accepts but never answers, as unreachable', async () => {
    silent = createServer(() => {}); // never responds
    const port = await listen(silent);
    const started = Date.now();
    const err = await registryError(imageDownloadSize(`127.0.0.1:${port}/x/y:v1`, undefined, { timeoutMs: 300 }));
    expect(err.code).toBe('unreachable');
    expect(err.message).toContain('did not answer within 300 ms');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("rejects with the caller's abort reason, not a RegistryError", async () => {
    silent = createServer(() => {});
    const port = await listen(silent);
    const controller = new AbortController();
    const pending = imageDownloadSize(`127.0.0.1:${port}/x/y:v1`, undefined, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const err = await pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).not.toBeInstanceOf(RegistryError);
    expect((err as Error).name).toBe('AbortError');
  });
});

describeDocker('imageDownloadSize against a registry with password auth', () => {
  let registry: AuthRegistry;
  let expected: number;

  beforeAll(async () => {
    registry = await startAuthRegistry();
    expected = (await sizeFromManifest((await ensureTestImages()).v1)).size;
  }, 180_000);

  afterAll(async () => {
    await registry?.stop();
  });

  it('is unauthorized without credentials', async () => {
    const err = await registryError(imageDownloadSize(registry.image(), undefined));
    expect(err.code).toBe('unauthorized');
    expect(err.message).toContain(`cannot read the manifest of ${registry.image()}: 401`);
  });

  it('is unauthorized with a wrong password', async () => {
    const err = await registryError(imageDownloadSize(registry.image(), { username: registry.username, password: 'wrong' }));
    expect(err.code).toBe('unauthorized');
    expect(err.statusCode).toBe(401);
  });

  it('reads the size with the right credentials', async () => {
    const size = await imageDownloadSize(registry.image(), { username: registry.username, password: registry.password });
    expect(size).toBe(expected);
  });
});

/**
 * A registry that only answers with a bearer token from its token endpoint,
 * which in turn wants basic credentials — the flow Docker Hub, GHCR, GitLab
 * and Harbor use.
 */
describe('imageDownloadSize through the Bearer token flow', () => {
  const USER = 'robot';
  const PASSWORD = `pw-${suffix}`;
  const TOKEN = `tok-${randomBytes(8).toString('hex')}`;

  const amd64 = manifest(1_000, [2_000, 3_000]);
  const arm64 = manifest(1_100, [2_100]);
  const armV7 = manifest(1_200, [2_200, 50]);
  const attestation = manifest(10, [20]);
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      entry(amd64, { os: 'linux', architecture: 'amd64' }),
      entry(arm64, { os: 'linux', architecture: 'arm64' }),
      entry(armV7, { os: 'linux', architecture: 'arm', variant: 'v7' }),
      entry(attestation, { os: 'unknown', architecture: 'unknown' }),
    ],
  });
  const byDigest = new Map([amd64, arm64, armV7, attestation].map((m) => [m.digest, m]));

  let server: Server;
  let host: string;
  const tokenRequests: URLSearchParams[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => send(res, route(req)));
    host = `127.0.0.1:${await listen(server)}`;
  });

  afterAll(async () => {
    if (server) await closeServer(server);
  });

  afterEach(() => {
    tokenRequests.length = 0;
  });

  /** What the fake registry answers to one request. */
  function route(req: IncomingMessage): Reply {
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (url.pathname === '/token') {
      tokenRequests.push(url.searchParams);
      const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
      if (req.headers.authorization !== expected) return json(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] });
      // Older token servers (and the legacy repository here) say access_token instead of token.
      const scope = url.searchParams.get('scope') ?? '';
      return json(200, scope.includes('x/legacy') ? { access_token: TOKEN } : { token: TOKEN });
    }
    const match = /^\/v2\/(x\/[a-z]+)\/manifests\/(.+)$/.exec(url.pathname);
    if (!match) return json(404, { errors: [{ code: 'NOT_FOUND', message: 'no route' }] });
    const [, repository, reference] = match;
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      return json(
        401,
        { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] },
        {
          'www-authenticate': `Bearer realm="http://${host}/token",service="reg",scope="repository:${repository}:pull"`,
        },
      );
    }
    if (reference === 'multi') return { status: 200, contentType: 'application/vnd.oci.image.index.v1+json', body: index };
    const body = reference === 'v1' ? amd64 : byDigest.get(reference!);
    if (!body) return json(404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
    return { status: 200, contentType: 'application/vnd.oci.image.manifest.v1+json', body: body.text };
  }

  it('gets a token with the basic credentials and reads the manifest with it', async () => {
    const size = await imageDownloadSize(`${host}/x/y:v1`, { username: USER, password: PASSWORD });
    expect(size).toBe(6_000);
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]!.get('service')).toBe('reg');
    expect(tokenRequests[0]!.get('scope')).toBe('repository:x/y:pull');
  });

  it('accepts a token server that answers with access_token', async () => {
    expect(await imageDownloadSize(`${host}/x/legacy:v1`, { username: USER, password: PASSWORD })).toBe(6_000);
  });

  it('is unauthorized when the token server refuses the credentials', async () => {
    const err = await registryError(imageDownloadSize(`${host}/x/y:v1`, { username: USER, password: 'wrong' }));
    expect(err.code).toBe('unauthorized');
    expect(err.message).toBe(`cannot read the manifest of ${host}/x/y:v1: the token server ${host} refused: 401 bad credentials`);
  });

  it('is unauthorized without credentials (anonymous token refused)', async () => {
    const err = await registryError(imageDownloadSize(`${host}/x/y:v1`, undefined));
    expect(err.code).toBe('unauthorized');
    expect(tokenRequests).toHaveLength(1);
  });

  it('picks the requested platform from an OCI index, ignoring the variant, and reuses the token', async () => {
    const auth = { username: USER, password: PASSWORD };
    expect(await imageDownloadSize(`${host}/x/y:multi`, auth, { platform: { os: 'linux', architecture: 'arm64' } })).toBe(3_200);
    expect(await imageDownloadSize(`${host}/x/y:multi`, auth, { platform: { os: 'linux', architecture: 'arm' } })).toBe(3_450);
    expect(await imageDownloadSize(`${host}/x/y:multi`, auth, { platform: { os: 'linux', architecture: 'amd64' } })).toBe(6_000);
    // One token per call: the second manifest request of each call reuses the first one's token.
    expect(tokenRequests).toHaveLength(3);
  });

  it("defaults to linux and this machine's architecture", async () => {
    const expected: Record<string, number> = { amd64: 6_000, arm64: 3_200, arm: 3_450 };
    const local = localPlatform();
    expect(local.os).toBe('linux');
    const pending = imageDownloadSize(`${host}/x/y:multi`, { username: USER, password: PASSWORD });
    const want = expected[local.architecture];
    if (want !== undefined) expect(await pending).toBe(want);
    else expect((await registryError(pending)).code).toBe('not_found');
  });

  it('reports a platform missing from the index as not_found, listing what there is', async () => {
    const err = await registryError(
      imageDownloadSize(`${host}/x/y:multi`, { username: USER, password: PASSWORD }, { platform: { os: 'linux', architecture: 's390x' } }),
    );
    expect(err.code).toBe('not_found');
    expect(err.message).toBe(
      `cannot read the manifest of ${host}/x/y:multi: no manifest for linux/s390x in the manifest list (available: linux/amd64, linux/arm64, linux/arm)`,
    );
  });
});

interface FakeManifest {
  text: string;
  digest: string;
  size: number;
}

function manifest(configSize: number, layerSizes: number[]): FakeManifest {
  const blob = (size: number, i: number) => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    size,
    digest: `sha256:${createHash('sha256').update(`${size}-${i}`).digest('hex')}`,
  });
  const text = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: configSize, digest: blob(configSize, -1).digest },
    layers: layerSizes.map(blob),
  });
  return { text, digest: `sha256:${createHash('sha256').update(text).digest('hex')}`, size: Buffer.byteLength(text) };
}

function entry(m: FakeManifest, platform: Record<string, string>) {
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.size, platform };
}

interface Reply {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

function send(res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, { ...reply.headers, 'content-type': reply.contentType, 'content-length': Buffer.byteLength(reply.body) });
  res.end(reply.body);
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, contentType: 'application/json', body: JSON.stringify(body), headers };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
