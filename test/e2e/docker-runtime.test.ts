/**
 * DockerRuntime against the real engine and the loopback registry: what
 * `docker inspect` and a real HTTP request show, not which dockerode call ran.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { isNotFound, RuntimeError } from '../../agent/runtime/errors.js';
import type { CreateRequest } from '../../agent/runtime/runtime.js';
import { specHash } from '../../agent/runtime/spec-hash.js';
import type { ContainerSpec } from '../../shared/index.js';
import { describeDocker, TEST_REGISTRY } from './support/engine.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const run = promisify(execFile);
const runId = randomBytes(4).toString('hex');
const app = `e2e-rt-${runId}`;
const deviceId = `e2e-rt-${runId}`;

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { timeout: 60_000 });
  return stdout.trim();
}

async function inspect(id: string): Promise<DockerInspect> {
  const [first] = JSON.parse(await docker('inspect', '--type', 'container', id)) as DockerInspect[];
  if (!first) throw new Error(`no inspect output for ${id}`);
  return first;
}

interface DockerInspect {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; ExitCode: number; FinishedAt: string };
  RestartCount: number;
  Config: { Env: string[]; Labels: Record<string, string>; Image: string };
  HostConfig: {
    PortBindings: Record<string, { HostIp: string; HostPort: string }[]>;
    Tmpfs?: Record<string, string>;
    RestartPolicy: { Name: string; MaximumRetryCount: number };
  };
  Mounts: { Type: string; Name?: string; Destination: string; RW: boolean }[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Polls until `check` returns a value other than undefined, or throws after `timeoutMs`. */
async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/**
 * A registry on loopback that serves a valid manifest and config but a bad
 * layer. "corrupt": the layer's bytes do not match its digest, so the engine
 * answers the pull with HTTP 200 and reports the failure later, as an
 * `{error}` line in the progress stream (the case an HTTP-status check alone
 * would take for success). "stall": the layer download starts and never
 * finishes, so only an abort ends the pull.
 */
async function startBadRegistry(mode: 'corrupt' | 'stall'): Promise<{ server: Server; host: string; layerRequested: Promise<void> }> {
  let onLayerRequested = () => {};
  const layerRequested = new Promise<void>((resolve) => {
    onLayerRequested = resolve;
  });
  const layerDigest = sha256('the layer the manifest promises');
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 32, digest: layerDigest }],
    }),
  );
  const server = createHttpServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } else if (url.includes('/manifests/')) {
      res
        .writeHead(200, {
          'content-type': 'application/vnd.docker.distribution.manifest.v2+json',
          'docker-content-digest': sha256(manifest),
          'content-length': manifest.length,
        })
        .end(req.method === 'HEAD' ? undefined : manifest);
    } else if (url.endsWith(`/blobs/${sha256(config)}`)) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': config.length }).end(config);
    } else if (url.endsWith(`/blobs/${layerDigest}`)) {
      onLayerRequested();
      const wrong = Buffer.alloc(32, 7); // not the promised bytes
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': wrong.length });
      if (mode === 'corrupt') res.end(wrong);
      else res.write(wrong.subarray(0, 8)); // …and the rest never comes
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND"}]}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('corrupt registry did not bind');
  return { server, host: `127.0.0.1:${address.port}`, layerRequested };
}

function request(spec: ContainerSpec, appRevision = 1, device = deviceId): CreateRequest {
  return { deviceId: device, app, appRevision, specHash: specHash(spec), spec };
}

describeDocker('DockerRuntime (real engine)', () => {
  const engine = new Dockerode();
  // Scoped to this run's device id, as an agent sharing the engine with others must be.
  const runtime = new DockerRuntime(engine, undefined, { deviceId });
  let images: TestImages;
  const pulledTags: string[] = [];
  const volumes: string[] = [];
  const stopWatchers: (() => void)[] = [];

  async function removeAppContainers(): Promise<void> {
    const ids = (await docker('ps', '-aq', '--filter', `label=flotilla.app=${app}`)).split('\n').filter(Boolean);
    if (ids.length > 0) await docker('rm', '-f', '-v', ...ids);
  }

  beforeAll(async () => {
    images = await ensureTestImages();
  }, 180_000);

  afterEach(async () => {
    for (const stop of stopWatchers.splice(0)) stop();
    await removeAppContainers();
  });

  afterAll(async () => {
    await removeAppContainers();
    for (const volume of volumes) await docker('volume', 'rm', '-f', volume).catch(() => {});
    for (const tag of pulledTags) await docker('rmi', tag).catch(() => {});
  });

  it('reports the engine version and data root', async () => {
    const info = await runtime.info();
    expect(info.version).toBe(await docker('version', '--format', '{{.Server.Version}}'));
    expect(info.dataRoot).toBe(await docker('info', '--format', '{{.DockerRootDir}}'));
  });

  it('pulls an image from the registry: absent before, present after', async () => {
    // A fresh tag of web:v1, made in the registry only, is certainly not local.
    const image = await retagInRegistry(images.v1, `pull-${runId}`);
    pulledTags.push(image);
    expect(await runtime.hasImage(image)).toBe(false);

    await runtime.pull(image, undefined, new AbortController().signal);

    expect(await runtime.hasImage(image)).toBe(true);
    const repoTags = JSON.parse(await docker('image', 'inspect', '--format', '{{json .RepoTags}}', image)) as string[];
    expect(repoTags).toContain(image);
    // The same image by digest, and the untagged repository (= :latest, which does not exist).
    const [digestRef] = JSON.parse(await docker('image', 'inspect', '--format', '{{json .RepoDigests}}', image)) as string[];
    expect(digestRef).toMatch(new RegExp(`^${TEST_REGISTRY.replace(/\./g, '\\.')}/flotilla-test/web@sha256:[0-9a-f]{64}$`));
    expect(await runtime.hasImage(digestRef as string)).toBe(true);
    expect(await runtime.hasImage(`${TEST_REGISTRY}/flotilla-test/web`)).toBe(false);
  });

  it('pulls with registry credentials when the spec has auth', async () => {
    // The loopback registry does not challenge, so credentials are sent but unused; the pull must still work.
    const image = await retagInRegistry(images.v1, `auth-${runId}`);
    pulledTags.push(image);
    await runtime.pull(image, { username: 'ci', password: 'secret' }, new AbortController().signal);
    expect(await runtime.hasImage(image)).toBe(true);
  });

  it('rejects the pull of a missing tag with pull_failed and a message naming the image', async () => {
    const image = `${TEST_REGISTRY}/flotilla-test/web:missing-${runId}`;
    const error = await runtime.pull(image, undefined, new AbortController().signal).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(RuntimeError);
    expect((error as RuntimeError).code).toBe('pull_failed');
    expect((error as RuntimeError).message).toContain(image);
    expect((error as RuntimeError).message).toMatch(/not found|manifest unknown/i);
    expect(await runtime.hasImage(image)).toBe(false);
  });

  it('rejects with pull_failed when the engine reports the failure inside the progress stream', async () => {
    const { server, host } = await startBadRegistry('corrupt');
    try {
      const image = `${host}/corrupt/app:v1`;
      const error = await runtime.pull(image, undefined, new AbortController().signal).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toMatchObject({ code: 'pull_failed' });
      expect((error as Error).message).toContain(image);
      expect((error as Error).message).toMatch(/verification failed/i);
      expect((error as RuntimeError).statusCode).toBeUndefined(); // it was not an HTTP error
      expect(await runtime.hasImage(image)).toBe(false);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('aborts a pull in progress: rejects as aborted at once, though the download stalls', async () => {
    const { server, host, layerRequested } = await startBadRegistry('stall');
    try {
      const image = `${host}/stalled/app:v1`;
      const controller = new AbortController();
      const pulling = runtime.pull(image, undefined, controller.signal);
      await layerRequested;
      const abortedAt = Date.now();
      controller.abort();
      await expect(pulling).rejects.toMatchObject({ code: 'aborted', message: `pull ${image}: aborted` });
      expect(Date.now() - abortedAt).toBeLessThan(2_000);
      expect(await runtime.hasImage(image)).toBe(false);
    } finally {
      // Docker 20.10 keeps a stalled layer download going after its client
      // hung up (observed for minutes); closing our end is what ends it.
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('rejects a pull with an already-aborted signal as aborted, without pulling', async () => {
    const image = await retagInRegistry(images.v2, `abort-${runId}`);
    const controller = new AbortController();
    controller.abort();
    await expect(runtime.pull(image, undefined, controller.signal)).rejects.toMatchObject({ code: 'aborted' });
    expect(await runtime.hasImage(image)).toBe(false);
  });

  it('creates and starts a container with ports, env, volume, tmpfs and labels, lists it, watches it stop, removes it', async () => {
    await runtime.pull(images.v1, undefined, new AbortController().signal);
    const hostPort = await freePort();
    const volume = `${app}-data`;
    volumes.push(volume);
    const spec: ContainerSpec = {
      name: 'web',
      image: images.v1,
      env: [
        { name: 'GREETING', value: 'hello world' },
        { name: 'TOKEN', fromSecret: 'not-resolved' },
      ],
      ports: [`127.0.0.1:${hostPort}:80`],
      volumes: [`${volume}:/data`],
      tmpfs: ['/scratch:size=1m'],
      labels: { 'com.example.team': 'edge' },
    };
    const req = request(spec, 3);

    const id = await runtime.create(req);
    await runtime.start(id);
    await runtime.start(id); // already running: not an error

    const details = await inspect(id);
    expect(details.Name).toBe(`/${app}_web`);
    expect(details.Config.Env).toContain('GREETING=hello world');
    expect(details.Config.Env.some((e) => e.startsWith('TOKEN='))).toBe(false);
    expect(details.HostConfig.PortBindings['80/tcp']).toEqual([{ HostIp: '127.0.0.1', HostPort: String(hostPort) }]);
    expect(details.Mounts).toContainEqual(expect.objectContaining({ Type: 'volume', Name: volume, Destination: '/data', RW: true }));
    expect(details.HostConfig.Tmpfs).toEqual({ '/scratch': 'size=1m' });
    expect(details.HostConfig.RestartPolicy).toEqual({ Name: 'unless-stopped', MaximumRetryCount: 0 });
    expect(details.Config.Labels).toMatchObject({
      'com.example.team': 'edge',
      'flotilla.managed': 'true',
      'flotilla.app': app,
      'flotilla.container': 'web',
      'flotilla.app-revision': '3',
      'flotilla.spec-hash': req.specHash,
      'flotilla.device': deviceId,
    });

    // The web server answers on the mapped loopback port, and it booted with the volume mounted.
    const body = await eventually(
      async () => {
        const response = await fetch(`http://127.0.0.1:${hostPort}/`);
        return response.ok ? response.text() : undefined;
      },
      10_000,
      'the web server',
    );
    expect(body.trim()).toBe('v1');
    expect(await docker('exec', id, 'cat', '/data/boot.log')).toMatch(/^boot v1 /);
    expect(await docker('exec', id, 'sh', '-c', 'grep " /scratch " /proc/mounts')).toMatch(/^tmpfs \/scratch tmpfs /);

    const listed = (await runtime.listManaged()).find((c) => c.id === id);
    expect(listed).toMatchObject({
      id,
      dockerName: `${app}_web`,
      app,
      container: 'web',
      appRevision: 3,
      specHash: req.specHash,
      image: images.v1,
      state: 'running',
      restartCount: 0,
    });
    expect(listed?.status).toMatch(/^Up /);
    expect(listed?.startedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(listed).not.toHaveProperty('exitCode');

    // watch() reports the stop; the stream is filtered to managed containers.
    let changes = 0;
    const watchErrors: Error[] = [];
    stopWatchers.push(
      runtime.watch(
        () => {
          changes += 1;
        },
        (err) => watchErrors.push(err),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the subscription reach the engine
    const before = changes;
    await runtime.stop(id, 5);
    await eventually(async () => (changes > before ? true : undefined), 10_000, 'a change event after stop');
    expect(watchErrors).toEqual([]);

    expect((await inspect(id)).State.Status).toBe('exited');
    await runtime.stop(id, 5); // already stopped: not an error
    const stopped = (await runtime.listManaged()).find((c) => c.id === id);
    expect(stopped).toMatchObject({ state: 'exited', exitCode: 0 });

    await runtime.remove(id);
    await runtime.remove(id); // already gone: not an error
    await runtime.stop(id, 1); // gone: not an error
    expect((await runtime.listManaged()).some((c) => c.id === id)).toBe(false);
    await expect(docker('inspect', '--type', 'container', id)).rejects.toThrow(/No such container/);
    // The named volume outlives the container.
    expect(await docker('volume', 'inspect', '--format', '{{.Name}}', volume)).toBe(volume);
  });

  it('counts restarts of a crashing container and reports its exit code', async () => {
    await runtime.pull(images.crash, undefined, new AbortController().signal);
    const id = await runtime.create(
      request({ name: 'crash', image: images.crash, restartPolicy: { name: 'on-failure', maximumRetryCount: 2 } }),
    );
    const startedBefore = Date.now();
    await runtime.start(id);
    let last: unknown;
    const observed = await eventually(
      async () => {
        const c = (await runtime.listManaged()).find((m) => m.id === id);
        last = c;
        return c && c.state === 'exited' && c.restartCount === 2 ? c : undefined;
      },
      20_000,
      'two restarts, then exited',
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last observed: ${JSON.stringify(last)}`);
    });
    expect(observed.exitCode).toBe(1);
    const details = await inspect(id);
    expect(details.RestartCount).toBe(2);
    // When it stopped: what tells an exit of its own from one while the engine was away.
    expect(observed.finishedAt).toBe(details.State.FinishedAt);
    // Not compared with startedAt: for a process that exits at once the engine can stamp its
    // finish a millisecond before its start. The engine and the test share a clock, so the
    // finish falls inside the test's own window (second precision guards a rounding).
    const finishedAt = Date.parse(observed.finishedAt!);
    expect(finishedAt).toBeGreaterThanOrEqual(startedBefore - 1000);
    expect(finishedAt).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it('confirms the engine on a new connection, and rejects as an engine error where none answers', async () => {
    await expect(runtime.confirmReachable()).resolves.toBeUndefined();
    const nowhere = new DockerRuntime(new Dockerode({ socketPath: `/tmp/flotilla-no-engine-${runId}.sock` }));
    const err = await nowhere.confirmReachable().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RuntimeError);
    expect(err).toMatchObject({ code: 'engine', message: expect.stringMatching(/^reach the engine on a new connection: .*ENOENT/) });
  });

  it('refuses to remove a running container (no force), and reports a taken name as a conflict', async () => {
    await runtime.pull(images.v1, undefined, new AbortController().signal);
    const spec: ContainerSpec = { name: 'busy', image: images.v1 };
    const id = await runtime.create(request(spec));
    await runtime.start(id);
    await expect(runtime.remove(id)).rejects.toMatchObject({ code: 'conflict' });
    await expect(runtime.create(request(spec))).rejects.toMatchObject({ code: 'conflict' });
    expect((await inspect(id)).State.Running).toBe(true);
    await runtime.stop(id, 5);
    await runtime.remove(id);
  });

  it('scopes listManaged to its device id when given one, and sees every device without', async () => {
    await runtime.pull(images.v1, undefined, new AbortController().signal);
    const other = `${deviceId}-other`;
    const mine = await runtime.create(request({ name: 'mine', image: images.v1 }));
    const theirs = await runtime.create(request({ name: 'theirs', image: images.v1 }, 1, other));
    const scoped = (await runtime.listManaged()).map((c) => c.id);
    expect(scoped).toContain(mine);
    expect(scoped).not.toContain(theirs);
    const everything = (await new DockerRuntime(engine).listManaged()).map((c) => c.id);
    expect(everything).toEqual(expect.arrayContaining([mine, theirs]));
    const otherDevice = (await new DockerRuntime(engine, undefined, { deviceId: other }).listManaged()).map((c) => c.id);
    expect(otherDevice).toEqual([theirs]);
  });

  it('reports unknown containers and images as not_found', async () => {
    const startError = await runtime.start(`no-such-container-${runId}`).catch((err: unknown) => err);
    expect(isNotFound(startError)).toBe(true);
    const createError = await runtime
      .create(request({ name: 'ghost', image: `${TEST_REGISTRY}/flotilla-test/web:never-pulled-${runId}` }))
      .catch((err: unknown) => err);
    expect(isNotFound(createError)).toBe(true);
    expect((createError as Error).message).toContain(`never-pulled-${runId}`);
  });
});
