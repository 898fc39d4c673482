/**
 * Safe updates on a real Docker Engine: a new version that crashes or fails
 * its health check is rolled back automatically to the previous container,
 * which keeps serving; a healthy one is committed and the old one removed;
 * kill-then-download stops the old version before pulling (seen in Docker's events).
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { DeviceEvent } from '../../shared/index.js';
import { freePort } from '../support/ports.js';
import { type HubProcess, runCli, scratchDir, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { answer, DeviceApps } from './support/device-apps.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const run = promisify(execFile);
const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-update-${suffix}`;

describeDocker('health-gated updates and automatic rollback', () => {
  let images: TestImages;
  let hub: HubProcess;
  const dir = scratchDir('flotilla-e2e-');
  const device = new DeviceApps(() => hub, deviceId, { update: { minReadySeconds: 2, healthTimeout: '8s' } });

  beforeAll(async () => {
    images = await ensureTestImages();
    hub = await startHubProcess();
    startAgentProcess(hub, deviceId, {}, { namePrefix: `${deviceId}.` });
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
  });

  afterAll(async () => {
    await stopAll();
    for (const app of device.names) await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('rolls back a new version that exits at once, and says why', async () => {
    const app = `e2e-crash-${suffix}`;
    const port = await freePort();
    await device.deploy(app, await retagInRegistry(images.v1, `v1-${app}`), port, 'v1');
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    // What a dashboard would see: the device's event stream.
    const events: DeviceEvent[] = [];
    const watcher = await mqtt.connectAsync(hub.mqttUrl, { protocolVersion: 4 });
    watcher.on('message', (_topic, payload) => events.push(JSON.parse(payload.toString()) as DeviceEvent));
    await watcher.subscribeAsync(`flotilla/v1/devices/${deviceId}/events`, { qos: 1 });

    await device.apply(app, { image: await retagInRegistry(images.crash, `crash-${suffix}`), ports: [`127.0.0.1:${port}:80`] });
    const state = await waitFor(
      'the rollback',
      async () => {
        const s = await device.state(app);
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
    const rolledBack = await waitFor('the rolled-back event', () => events.find((e) => e.type === 'rolled-back' && e.app === app));
    expect(rolledBack.message).toMatch(
      /^roll back e2e-crash-\w+ from revision 2: container web (exited with code 1|restarted \d+ time\(s\))$/,
    );
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['pull-started', 'pulled', 'stashed', 'created', 'started', 'health-failed', 'rolled-back', 'restored']),
    );
    expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((a, b) => a - b));
    // A pull says how long it took and how big the image is.
    expect(events.find((e) => e.type === 'pulled' && e.app === app)?.message).toMatch(/ in \d+ ms, [\d.]+ (B|KiB|MiB): /);
    await watcher.endAsync();
    // The hub stored the same events, queryable afterwards.
    const stored = await fetch(`${hub.url}/api/v1/events?device=${deviceId}&app=${app}&tail=1000`).then((r) => r.json());
    expect((stored as { events: DeviceEvent[] }).events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['health-failed', 'rolled-back']),
    );

    // The device does not retry revision 2 by itself; the operator can, as a new revision.
    const retried = await runCli(['--hub', hub.url, 'rollout', 'retry', app]);
    expect(retried.stdout.trim()).toBe(`app/${app} revision 3 (retry of revision 2)`);
    await waitFor(
      'revision 3 to fail the same way',
      async () => {
        const s = await device.state(app);
        return s?.phase === 'rolled-back' && s.revision === 3;
      },
      { timeoutMs: 60_000 },
    );
    const history = await runCli(['--hub', hub.url, 'rollout', 'history', app]);
    expect(history.stdout).toMatch(/^3\*\s+\S+\s+\S+crash\S*\s+retry of 2\s+<none>$/m);
    await waitFor('v1 to serve again', async () => (await answer(port)) === 'v1');
  });

  it('rolls back a new version the engine cannot start (its command does not exist): the old one answers again, unchanged', async () => {
    const app = `e2e-nostart-${suffix}`;
    const port = await freePort();
    await device.deploy(app, await retagInRegistry(images.v1, `v1-${app}`), port, 'v1');
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    const since = Math.floor(Date.now() / 1000) - 1;

    // The swap creates v2, stops and stashes v1, and asks the engine to start v2, which refuses.
    await device.apply(app, {
      image: await retagInRegistry(images.v2, `v2-${app}`),
      ports: [`127.0.0.1:${port}:80`],
      command: ['/nonexistent'],
    });
    const state = await waitFor(
      'the rollback',
      async () => {
        const s = await device.state(app);
        return s?.phase === 'rolled-back' ? s : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(state.message).toMatch(
      /^revision 2 failed its health gate \(container web could not start: .*\/nonexistent.*\); revision 1 runs again$/,
    );
    await waitFor(
      'v1 to serve again, alone',
      async () => (await answer(port).catch(() => '')) === 'v1' && (await containerIds(`flotilla.app=${app}`)).join() === v1Id,
      {
        timeoutMs: 30_000,
      },
    );
    const restored = await inspect(v1Id!);
    expect(restored.Name).toBe(`/${deviceId}.${app}_web`);
    expect(restored.HostConfig.RestartPolicy.Name).toBe('unless-stopped');
    // It was swapped out and back: stopped once, then started again.
    const until = Math.ceil(Date.now() / 1000) + 1;
    const { stdout } = await run(
      'docker',
      ['events', '--since', `${since}`, '--until', `${until}`, '--filter', `container=${v1Id}`, '--format', '{{.Action}}'],
      {
        timeout: 20_000,
      },
    );
    expect(
      stdout
        .trim()
        .split('\n')
        .filter((a) => a === 'die' || a === 'start'),
    ).toEqual(['die', 'start']);
  });

  it('rolls back a new version whose http health check fails, and commits a healthy one', async () => {
    const app = `e2e-health-${suffix}`;
    const port = await freePort();
    await device.deploy(app, await retagInRegistry(images.v1, `v1-${app}`), port, 'v1');
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    const v2 = await retagInRegistry(images.v2, `v2-${app}`);

    // v2 serves "/", but not "/healthz": its gate never passes.
    await device.apply(app, { image: v2, ports: [`127.0.0.1:${port}:80`], healthcheck: { http: 'http://localhost:80/healthz' } });
    const failed = await waitFor(
      'the rollback',
      async () => {
        const s = await device.state(app);
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
    await device.apply(app, { image: v2, ports: [`127.0.0.1:${port}:80`], healthcheck: { http: 'http://localhost:80/index.html' } });
    await waitFor('v2 committed', async () => (await device.state(app))?.phase === 'running' && (await answer(port)) === 'v2', {
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
    await device.deploy(app, await retagInRegistry(images.v1, `v1-${app}`), port, 'v1');
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    const v2 = await retagInRegistry(images.v2, `v2-kill-${suffix}`);
    const since = Math.floor(Date.now() / 1000) - 1;

    await device.apply(app, { image: v2, ports: [`127.0.0.1:${port}:80`] }, { strategy: 'kill-then-download' });
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
    // The engine pulls it (`image pull REF`), or the agent downloads it and the engine loads it (`image load ID`).
    const v2Id = await docker('image', 'inspect', '--format', '{{.Id}}', v2);
    const pulled = events.findIndex(
      (e) => (e.startsWith('image pull') && e.includes(`v2-kill-${suffix}`)) || e.startsWith(`image load ${v2Id}`),
    );
    expect(oldDied).toBeGreaterThanOrEqual(0);
    expect(pulled).toBeGreaterThan(oldDied);
    expect(await docker('inspect', '--format', '{{.Config.Image}}', `${deviceId}.${app}_web`)).toBe(v2);
  });

  it('keeps the current and previous image of an app and removes the older ones it pulled', async () => {
    const app = `e2e-gc-${suffix}`;
    const port = await freePort();
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
      await device.apply(app, { image: image, ports: [`127.0.0.1:${port}:80`] });
      await waitFor(
        `${image} committed`,
        async () =>
          (await device.state(app))?.phase === 'running' &&
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
    device.names.push(app);
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
    await waitFor('v1 running', async () => (await device.state(app))?.phase === 'running', { timeoutMs: 60_000 });
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    const since = Math.floor(Date.now() / 1000) - 1;

    const v2 = await retagInRegistry(images.v2, `v2-${app}`);
    write(v2);
    expect((await runCli(['--hub', hub.url, 'apply', '-f', file])).code).toBe(0);
    const v2Id = await waitFor(
      'v2 committed under the app name, alone',
      async () => {
        const ids = await containerIds(`flotilla.app=${app}`);
        if ((await device.state(app))?.phase !== 'running' || ids.length !== 1 || ids[0] === v1Id) return undefined;
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
