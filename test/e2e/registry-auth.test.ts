/**
 * Registry credentials from the app spec, against a registry that really
 * challenges (docker-registry with htpasswd auth, support/auth-registry.ts):
 * first DockerRuntime alone, then the whole path with real processes, where
 * the password lives in a hub secret and reaches the engine through the
 * desired state. Nothing on this machine has stored credentials for that
 * registry, so a pull that works can only have used the spec's.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { RuntimeError } from '../../agent/runtime/errors.js';
import { type AgentProcess, type HubProcess, runCli, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';
import { type AuthRegistry, startAuthRegistry } from './support/auth-registry.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';

const suffix = randomBytes(4).toString('hex');
const UNAUTHORIZED = /unauthorized|authentication required|no basic auth credentials/i;

/** Tags pushed to the registry: one per case, so no case finds another's pull in the local image store. */
const TAGS = {
  anonymous: 'rt-anonymous',
  wrongPassword: 'rt-wrong',
  rightPassword: 'rt-right',
  app: 'v1',
  appWrongSecret: 'wrong-secret',
} as const;

/** Settles `promise` and returns what it rejected with (or fails the test if it resolved). */
async function rejection(promise: Promise<unknown>): Promise<RuntimeError> {
  const outcome = await promise.then(
    () => ({ resolved: true as const }),
    (err: unknown) => ({ resolved: false as const, err }),
  );
  if (outcome.resolved) throw new Error('expected the pull to be rejected, but it succeeded');
  expect(outcome.err).toBeInstanceOf(RuntimeError);
  return outcome.err as RuntimeError;
}

describeDocker('pulling from a registry that requires authentication', () => {
  let registry: AuthRegistry;

  beforeAll(async () => {
    registry = await startAuthRegistry({ tags: Object.values(TAGS) });
    // The premise of every test below: without credentials the registry refuses.
    await expect(docker('pull', '-q', registry.image(TAGS.anonymous))).rejects.toThrow(UNAUTHORIZED);
  }, 180_000);

  afterAll(async () => {
    if (!registry) return;
    // Containers are gone by now (the inner afterAll hooks ran first), so the images can go too.
    for (const tag of Object.values(TAGS)) await docker('rmi', registry.image(tag)).catch(() => undefined);
    await registry.stop();
  });

  describe('DockerRuntime', () => {
    const runtime = new DockerRuntime(new Dockerode(), undefined, { deviceId: `e2e-regauth-rt-${suffix}` });
    const pull = (tag: string, auth?: { username: string; password: string }) =>
      runtime.pull(registry.image(tag), auth, new AbortController().signal);

    it('rejects a pull without credentials as pull_failed, naming the image and the refusal', async () => {
      const image = registry.image(TAGS.anonymous);
      const error = await rejection(pull(TAGS.anonymous));
      expect(error.code).toBe('pull_failed');
      expect(error.message).toContain(image);
      expect(error.message).toMatch(UNAUTHORIZED);
      expect(await runtime.hasImage(image)).toBe(false);
    });

    it('rejects a pull with a wrong password as pull_failed', async () => {
      const image = registry.image(TAGS.wrongPassword);
      const error = await rejection(pull(TAGS.wrongPassword, { username: registry.username, password: `${registry.password}x` }));
      expect(error.code).toBe('pull_failed');
      expect(error.message).toContain(image);
      expect(error.message).toMatch(UNAUTHORIZED);
      expect(await runtime.hasImage(image)).toBe(false);
    });

    it('pulls with the right username and password', async () => {
      const image = registry.image(TAGS.rightPassword);
      expect(await runtime.hasImage(image)).toBe(false);
      await pull(TAGS.rightPassword, { username: registry.username, password: registry.password });
      expect(await runtime.hasImage(image)).toBe(true);
    });
  });

  describe('hub and agent processes, password in a hub secret', () => {
    const goodApp = `e2e-regauth-ok-${suffix}`;
    const badApp = `e2e-regauth-bad-${suffix}`;
    const goodDevice = `e2e-regauth-ok-${suffix}`;
    const badDevice = `e2e-regauth-bad-${suffix}`;
    let dir: string;
    let hub: HubProcess;
    const agents: AgentProcess[] = [];

    const putSecret = async (name: string, value: string) => {
      const res = await fetch(`${hub.url}/api/v1/secrets/${name}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ value }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
    };

    const apply = async (name: string, device: string, image: string, secret: string) => {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(
        file,
        stringify({
          name,
          scheduling: { devices: [device] },
          spec: { containers: [{ name: 'web', image, auth: { username: registry.username, fromSecret: secret } }] },
        }),
      );
      const applied = await runCli(['--hub', hub.url, 'apply', '-f', file]);
      expect(applied.stderr).toBe('');
      expect(applied.code).toBe(0);
    };

    const reportedApp = async (device: string, app: string) => {
      const out = await runCli(['--hub', hub.url, 'describe', 'device', device, '-o', 'json']);
      if (out.code !== 0) return undefined;
      const view = JSON.parse(out.stdout) as { apps: { name: string; phase: string; message?: string }[] };
      return view.apps.find((a) => a.name === app);
    };

    beforeAll(async () => {
      dir = scratchDir('flotilla-e2e-regauth-');
      hub = await startHubProcess();
      // Both agents share this engine: each sees only its own containers, names prefixed.
      for (const device of [goodDevice, badDevice]) agents.push(startAgentProcess(hub, device, {}, { namePrefix: `${device}.` }));
      await waitFor('both agents to register', async () => {
        const out = await runCli(['--hub', hub.url, 'get', 'devices', '-o', 'json']);
        const ids = (JSON.parse(out.stdout) as { items: { id: string }[] }).items.map((d) => d.id);
        return ids.includes(goodDevice) && ids.includes(badDevice);
      });
      await putSecret('registry-password', registry.password);
      await putSecret('registry-password-stale', `${registry.password}-stale`);
    }, 60_000);

    afterAll(async () => {
      if (process.env.DEBUG_E2E) for (const agent of agents) console.log(agent.proc.output);
      await stopAll();
      await removeContainersAndVolumes(`flotilla.app=${goodApp}`);
      await removeContainersAndVolumes(`flotilla.app=${badApp}`);
    });

    it('runs the container when the secret holds the right password', async () => {
      const image = registry.image(TAGS.app);
      await apply(goodApp, goodDevice, image, 'registry-password');

      const id = await waitFor(
        'the container to run',
        async () => {
          const [first] = await containerIds(`flotilla.app=${goodApp}`);
          return first && (await inspect(first)).State.Running ? first : undefined;
        },
        { timeoutMs: 60_000 },
      );
      const container = await inspect(id);
      expect(container.Config.Image).toBe(image);
      expect(container.Config.Labels).toMatchObject({ 'flotilla.app': goodApp, 'flotilla.device': goodDevice });
      await waitFor('the device to report the app running', async () => (await reportedApp(goodDevice, goodApp))?.phase === 'running');
    });

    it('reports the app failed, naming the pull failure, and creates no container when the password is wrong', async () => {
      const image = registry.image(TAGS.appWrongSecret);
      await apply(badApp, badDevice, image, 'registry-password-stale');

      const reported = await waitFor(
        'the device to report the app failed',
        async () => {
          const app = await reportedApp(badDevice, badApp);
          return app?.phase === 'failed' ? app : undefined;
        },
        { timeoutMs: 60_000 },
      );
      expect(reported.message).toMatch(/pull/i);
      expect(reported.message).toContain(image);
      expect(reported.message).toMatch(UNAUTHORIZED);
      expect(await containerIds(`flotilla.app=${badApp}`)).toEqual([]);
      await expect(docker('image', 'inspect', image)).rejects.toThrow(/No such image/i);
    });

    it('recovers once the secret is set to the right password', async () => {
      await putSecret('registry-password-stale', registry.password);
      const id = await waitFor(
        'the container to run',
        async () => {
          const [first] = await containerIds(`flotilla.app=${badApp}`);
          return first && (await inspect(first)).State.Running ? first : undefined;
        },
        { timeoutMs: 60_000 },
      );
      expect((await inspect(id)).Config.Image).toBe(registry.image(TAGS.appWrongSecret));
      await waitFor('the device to report the app running', async () => (await reportedApp(badDevice, badApp))?.phase === 'running');
    });

    it('shows the passwords nowhere: not in CLI output, process logs or the containers', async () => {
      const cli = await Promise.all(
        [
          ['describe', 'device', goodDevice],
          ['describe', 'device', badDevice],
          ['describe', 'app', goodApp],
          ['describe', 'app', badApp],
          ['get', 'devices'],
        ].map(async (args) => (await runCli(['--hub', hub.url, ...args, '-o', 'json'])).stdout),
      );
      const inspected = await Promise.all(
        [goodApp, badApp].map(async (app) => docker('inspect', ...(await containerIds(`flotilla.app=${app}`)))),
      );
      const seen = [...cli, ...inspected, hub.proc.output, ...agents.map((agent) => agent.proc.output)];
      expect(seen.join('\n')).toContain(goodApp); // the outputs are real, not empty
      // The stale password starts with the right one, so this covers both.
      for (const text of seen) expect(text).not.toContain(registry.password);
    });
  });
});
