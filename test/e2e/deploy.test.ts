/**
 * The whole path a user takes, with real processes: `flotilla server`,
 * `flotilla agent` on a real Docker Engine, `flotilla apply -f` of a spec
 * whose image comes from the loopback registry; checked with `docker inspect`
 * and HTTP requests to the published port.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../support/ports.js';
import {
  type AgentProcess,
  type HubProcess,
  runCli,
  scratchDir,
  startAgentProcess,
  startHubProcess,
  stopAll,
} from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-deploy-${suffix}`;
const deviceId = `e2e-dev-${suffix}`;
const volume = `${app}-data`;

describeDocker('deploy, update and delete an app on a real Docker Engine', () => {
  let images: TestImages;
  let hub: HubProcess;
  let agent: AgentProcess;
  let port: number;
  const dir = scratchDir('flotilla-e2e-');

  const specFile = (image: string) => {
    const file = join(dir, `${app}-${image.split(':').pop()}.yaml`);
    writeFileSync(
      file,
      stringify({
        name: app,
        scheduling: { selectors: { site: `lab-${suffix}` } },
        spec: {
          containers: [
            {
              name: 'web',
              image,
              env: [{ name: 'GREETING', value: 'hello' }],
              ports: [`127.0.0.1:${port}:80`],
              volumes: [`${volume}:/data`],
              tmpfs: ['/scratch:size=8m'],
              resources: { memory: '64m' },
            },
          ],
          update: { minReadySeconds: 2 },
        },
      }),
    );
    return file;
  };

  const fetchText = async () => (await fetch(`http://127.0.0.1:${port}/`)).text();

  beforeAll(async () => {
    images = await ensureTestImages();
    port = await freePort();
    hub = await startHubProcess();
    agent = startAgentProcess(hub, deviceId, { site: `lab-${suffix}` });
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'get', 'devices'])).stdout.includes(deviceId));
  });

  afterAll(async () => {
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`, [volume]);
  });

  it('runs the container with the env, port, volume, tmpfs and labels of the spec', async () => {
    const applied = await runCli(['--hub', hub.url, 'apply', '-f', specFile(images.v1)]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout.trim()).toBe(`app/${app} created (revision 1)`);
    expect(applied.code).toBe(0);

    await waitFor('the web server to answer', async () => (await fetchText()).trim() === 'v1', { timeoutMs: 60_000 });
    const [id] = await containerIds(`flotilla.app=${app}`);
    const container = await inspect(id!);
    expect(container.Name).toBe(`/${app}_web`);
    expect(container.Config.Env).toContain('GREETING=hello');
    expect(container.HostConfig.PortBindings?.['80/tcp']).toEqual([{ HostIp: '127.0.0.1', HostPort: `${port}` }]);
    expect(container.Mounts).toContainEqual(expect.objectContaining({ Type: 'volume', Name: volume, Destination: '/data', RW: true }));
    expect(container.HostConfig.Tmpfs).toEqual({ '/scratch': 'size=8m' });
    expect(container.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(container.HostConfig.RestartPolicy.Name).toBe('unless-stopped');
    expect(container.Config.Labels).toMatchObject({
      'flotilla.managed': 'true',
      'flotilla.app': app,
      'flotilla.container': 'web',
      'flotilla.app-revision': '1',
      'flotilla.device': deviceId,
    });

    const described = await waitFor('the device to report the app running', async () => {
      const out = await runCli(['--hub', hub.url, 'get', 'devices', '-o', 'json']);
      const device = (JSON.parse(out.stdout) as { items: { id: string; apps: { name: string; phase: string }[] }[] }).items.find(
        (d) => d.id === deviceId,
      );
      return device?.apps.find((a) => a.name === app && a.phase === 'running');
    });
    expect(described.phase).toBe('running');
  });

  it('replaces the container when a new tag is applied, keeping the named volume', async () => {
    const [before] = await containerIds(`flotilla.app=${app}`);
    const v2 = await retagInRegistry(images.v2, `v2-${suffix}`);
    const applied = await runCli(['--hub', hub.url, 'apply', '-f', specFile(v2)]);
    expect(applied.stdout.trim()).toBe(`app/${app} configured (revision 2)`);

    await waitFor('v2 to answer', async () => (await fetchText()).trim() === 'v2', { timeoutMs: 60_000 });
    // The previous container is kept (stopped) until v2 passes its health gate, then removed.
    const after = await waitFor('the previous container to be removed', async () => {
      const ids = await containerIds(`flotilla.app=${app}`);
      return ids.length === 1 ? ids : undefined;
    });
    expect(after[0]).not.toBe(before);
    expect((await inspect(after[0]!)).Config.Image).toBe(v2);
    // The image's start script appends a line per boot to /data/boot.log: both boots are there.
    const bootLog = await docker('exec', after[0]!, 'cat', '/data/boot.log');
    expect(bootLog.split('\n').map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual(['boot v1', 'boot v2']);
  });

  it('removes the containers when the app is deleted', async () => {
    const deleted = await runCli(['--hub', hub.url, 'delete', 'app', app]);
    expect(deleted.stdout.trim()).toBe(`app/${app} deleted`);
    await waitFor('the containers to be removed', async () => (await containerIds(`flotilla.app=${app}`)).length === 0, {
      timeoutMs: 60_000,
    });
    const described = await runCli(['--hub', hub.url, 'describe', 'app', app]);
    expect(described.code).toBe(3);
    // Named volumes are user data: deleting an app leaves them, as `docker rm` does.
    expect(await docker('volume', 'ls', '-q', '--filter', `name=^${volume}$`)).toBe(volume);
    expect(agent.proc.running).toBe(true);
  });
});
