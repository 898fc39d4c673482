/**
 * Safe updates on a real Docker Engine: a new version that crashes or fails
 * its health check is rolled back automatically to the previous container,
 * which keeps serving; a healthy one is committed and the old one removed;
 * kill-then-download stops the old version before pulling (seen in Docker's events).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AppState, DeviceView } from '../../shared/index.js';
import { freePort } from '../support/ports.js';
import { type HubProcess, runCli, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const run = promisify(execFile);
const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-update-${suffix}`;

describeDocker('health-gated updates and automatic rollback', () => {
  let images: TestImages;
  let hub: HubProcess;
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-e2e-'));
  const apps: string[] = [];

  async function apply(app: string, image: string, port: number, extra: { update?: object; healthcheck?: object } = {}) {
    const file = join(dir, `${app}-${Date.now()}.yaml`);
    const container = {
      name: 'web',
      image,
      ports: [`127.0.0.1:${port}:80`],
      ...(extra.healthcheck ? { healthcheck: extra.healthcheck } : {}),
    };
    writeFileSync(
      file,
      stringify({
        name: app,
        scheduling: { devices: [deviceId] },
        spec: { containers: [container], update: { minReadySeconds: 2, healthTimeout: '8s', ...extra.update } },
      }),
    );
    const result = await runCli(['--hub', hub.url, 'apply', '-f', file]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  }

  async function appState(app: string): Promise<AppState | undefined> {
    const out = await runCli(['--hub', hub.url, 'describe', 'device', deviceId, '-o', 'json']);
    return (JSON.parse(out.stdout) as DeviceView).apps.find((a) => a.name === app);
  }

  const answer = async (port: number) => (await fetch(`http://127.0.0.1:${port}/`)).text().then((t) => t.trim());

  /** Deploys v1 and waits until it passed its gate. */
  async function deployV1(app: string, port: number) {
    apps.push(app);
    await apply(app, await retagInRegistry(images.v1, `v1-${app}`), port);
    await waitFor(`${app} v1 running`, async () => (await appState(app))?.phase === 'running' && (await answer(port)) === 'v1', {
      timeoutMs: 60_000,
    });
  }

  beforeAll(async () => {
    images = await ensureTestImages();
    hub = await startHubProcess();
    startAgentProcess(hub, deviceId, {}, { namePrefix: `${deviceId}.` });
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
  });

  afterAll(async () => {
    await stopAll();
    for (const app of apps) await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('rolls back a new version that exits at once, and says why', async () => {
    const app = `e2e-crash-${suffix}`;
    const port = await freePort();
    await deployV1(app, port);
    const [v1Id] = await containerIds(`flotilla.app=${app}`);

    await apply(app, await retagInRegistry(images.crash, `crash-${suffix}`), port);
    const state = await waitFor(
      'the rollback',
      async () => {
        const s = await appState(app);
        return s?.phase === 'rolled-back' ? s : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(state.revision).toBe(2);
    expect(state.message).toMatch(
      /^revision 2 failed its health gate \(container web (exited with code 1|restarted \d+ time\(s\))\); revision 1 runs again$/,
    );

    await waitFor('v1 to serve again', async () => (await answer(port)) === 'v1');
    await waitFor('only the v1 container to remain', async () => (await containerIds(`flotilla.app=${app}`)).join() === v1Id);
    const restored = await inspect(v1Id!);
    expect(restored.Name).toBe(`/${deviceId}.${app}_web`);
    expect(restored.State.Running).toBe(true);
  });

  it('rolls back a new version whose http health check fails, and commits a healthy one', async () => {
    const app = `e2e-health-${suffix}`;
    const port = await freePort();
    await deployV1(app, port);
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    const v2 = await retagInRegistry(images.v2, `v2-${app}`);

    // v2 serves "/", but not "/healthz": its gate never passes.
    await apply(app, v2, port, { healthcheck: { http: 'http://localhost:80/healthz' } });
    const failed = await waitFor(
      'the rollback',
      async () => {
        const s = await appState(app);
        return s?.phase === 'rolled-back' ? s : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(failed.message).toMatch(/health check failed for \d+s of 8s: GET http:\/\/localhost:80\/healthz answered 404/);
    await waitFor(
      'v1 to serve again',
      async () => (await answer(port)) === 'v1' && (await containerIds(`flotilla.app=${app}`)).join() === v1Id,
    );

    // The same v2 with a health check it passes: committed, and the previous container removed.
    await apply(app, v2, port, { healthcheck: { http: 'http://localhost:80/index.html' } });
    await waitFor('v2 committed', async () => (await appState(app))?.phase === 'running' && (await answer(port)) === 'v2', {
      timeoutMs: 60_000,
    });
    const ids = await waitFor('one container left', async () => {
      const found = await containerIds(`flotilla.app=${app}`);
      return found.length === 1 ? found : undefined;
    });
    expect(ids[0]).not.toBe(v1Id);
    expect((await inspect(ids[0]!)).Config.Image).toBe(v2);
  });

  it('kill-then-download stops the running version before pulling the new image', async () => {
    const app = `e2e-kill-first-${suffix}`;
    const port = await freePort();
    await deployV1(app, port);
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    const v2 = await retagInRegistry(images.v2, `v2-kill-${suffix}`);
    const since = Math.floor(Date.now() / 1000) - 1;

    await apply(app, v2, port, { update: { strategy: 'kill-then-download' } });
    await waitFor('v2 to serve', async () => (await answer(port).catch(() => '')) === 'v2', { timeoutMs: 60_000 });
    const until = Math.ceil(Date.now() / 1000) + 1;
    const { stdout } = await run(
      'docker',
      ['events', '--since', `${since}`, '--until', `${until}`, '--format', '{{.Type}} {{.Action}} {{.Actor.ID}}'],
      {
        timeout: 20_000,
      },
    );
    const events = stdout.trim().split('\n');
    const oldDied = events.findIndex((e) => e.startsWith(`container die ${v1Id}`));
    const pulled = events.findIndex((e) => e.startsWith('image pull') && e.includes(`v2-kill-${suffix}`));
    expect(oldDied).toBeGreaterThanOrEqual(0);
    expect(pulled).toBeGreaterThan(oldDied);
    expect(await docker('inspect', '--format', '{{.Config.Image}}', `${deviceId}.${app}_web`)).toBe(v2);
  });

  it('keeps the current and previous image of an app and removes the older ones it pulled', async () => {
    const app = `e2e-gc-${suffix}`;
    const port = await freePort();
    apps.push(app);
    const first = await retagInRegistry(images.v1, `gc-1-${suffix}`);
    const second = await retagInRegistry(images.v2, `gc-2-${suffix}`);
    const third = await retagInRegistry(images.v1, `gc-3-${suffix}`);
    const present = async (image: string) =>
      await run('docker', ['image', 'inspect', image]).then(
        () => true,
        () => false,
      );

    for (const [image, text] of [
      [first, 'v1'],
      [second, 'v2'],
      [third, 'v1'],
    ] as const) {
      await apply(app, image, port);
      await waitFor(
        `${image} committed`,
        async () =>
          (await appState(app))?.phase === 'running' &&
          (await answer(port)) === text &&
          (await containerIds(`flotilla.app=${app}`)).length === 1,
        {
          timeoutMs: 60_000,
        },
      );
    }
    await waitFor('the oldest image to be removed', async () => !(await present(first)));
    expect(await present(second)).toBe(true);
    expect(await present(third)).toBe(true);
  });

  it('start-then-kill starts the new version before stopping the old one, and refuses host ports', async () => {
    const app = `e2e-beside-${suffix}`;
    apps.push(app);
    const file = join(dir, `${app}.yaml`);
    const write = (image: string, ports: string[] = []) =>
      writeFileSync(
        file,
        stringify({
          name: app,
          scheduling: { devices: [deviceId] },
          spec: { containers: [{ name: 'web', image, ports }], update: { strategy: 'start-then-kill', minReadySeconds: 2 } },
        }),
      );

    write(images.v1, ['8080:80']);
    const refused = await runCli(['--hub', hub.url, 'apply', '-f', file]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /spec\.update\.strategy: start-then-kill runs the old and the new version side by side, so the host port of spec\.containers\[0\]\.ports\[0\] would clash/,
    );

    write(await retagInRegistry(images.v1, `v1-${app}`));
    expect((await runCli(['--hub', hub.url, 'apply', '-f', file])).code).toBe(0);
    await waitFor('v1 running', async () => (await appState(app))?.phase === 'running', { timeoutMs: 60_000 });
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    const since = Math.floor(Date.now() / 1000) - 1;

    const v2 = await retagInRegistry(images.v2, `v2-${app}`);
    write(v2);
    expect((await runCli(['--hub', hub.url, 'apply', '-f', file])).code).toBe(0);
    const v2Id = await waitFor(
      'v2 committed under the app name, alone',
      async () => {
        const ids = await containerIds(`flotilla.app=${app}`);
        if ((await appState(app))?.phase !== 'running' || ids.length !== 1 || ids[0] === v1Id) return undefined;
        return (await inspect(ids[0]!)).Name === `/${deviceId}.${app}_web` ? ids[0] : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const until = Math.ceil(Date.now() / 1000) + 1;
    const { stdout } = await run(
      'docker',
      ['events', '--since', `${since}`, '--until', `${until}`, '--filter', 'type=container', '--format', '{{.Action}} {{.Actor.ID}}'],
      {
        timeout: 20_000,
      },
    );
    const events = stdout.trim().split('\n');
    const newStarted = events.indexOf(`start ${v2Id}`);
    const oldDied = events.indexOf(`die ${v1Id}`);
    expect(newStarted).toBeGreaterThanOrEqual(0);
    expect(oldDied).toBeGreaterThan(newStarted);
  });
});
