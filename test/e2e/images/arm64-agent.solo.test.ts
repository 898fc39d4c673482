/**
 * The arm64 agent image, run under qemu-user-static on this amd64 machine, against the
 * amd64 hub image: the agent connects, reports itself arm64, and deploys an app on the
 * engine end to end (the container runs and answers, and the device reports it running).
 * Solo: every instruction of an emulated Node costs several native ones.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../../support/ports.js';
import { runCli, scratchDir, stopAll } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from '../support/docker-cli.js';
import { ensureTestImages } from '../support/images.js';
import { describeImages, dockerSocketGroup, fetchSoon, image, publishedPort } from './built-images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const network = `flotilla-e2e-arm64-${suffix}`;
const hubName = `flotilla-e2e-hub-${suffix}`;
const agentName = `flotilla-e2e-agent-${suffix}`;
const deviceId = `arm64-dev-${suffix}`;
const app = `e2e-arm64-${suffix}`;

interface Device {
  id: string;
  online: boolean;
  host?: { arch?: string; agentVersion?: string; nodeVersion?: string };
  apps: { name: string; phase: string }[];
}

describeImages('the arm64 agent image under qemu deploys an app through the amd64 hub image', () => {
  let hubUrl = '';
  const dir = scratchDir('flotilla-e2e-arm64-');

  const devices = async (): Promise<Device[]> =>
    ((await (await fetchSoon(`${hubUrl}/api/v1/devices`)).json()) as { items: Device[] }).items;
  const logsOf = async (name: string) => docker('logs', '--tail', '30', name).catch((err: Error) => err.message);

  beforeAll(async () => {
    await docker('network', 'create', network);
    await docker(
      'run',
      '-d',
      '--name',
      hubName,
      '--network',
      network,
      '--network-alias',
      'hub',
      '-e',
      'FLOTILLA_ANONYMOUS=allow',
      '-p',
      '127.0.0.1::7070',
      image('hub', 'amd64'),
    );
    hubUrl = `http://127.0.0.1:${await publishedPort(hubName, '7070/tcp')}`;
    await waitFor('the hub image to answer /healthz', async () => (await fetchSoon(`${hubUrl}/healthz`)).ok, { timeoutMs: 30_000 });
  });

  afterAll(async () => {
    await stopAll();
    await docker('rm', '-f', '-v', agentName, hubName).catch(() => undefined);
    await docker('network', 'rm', network).catch(() => undefined);
    await removeContainersAndVolumes(`flotilla.device=${deviceId}`);
  });

  it('runs as arm64 under emulation and connects to the hub', async () => {
    await docker(
      'run',
      '-d',
      '--name',
      agentName,
      '--platform',
      'linux/arm64',
      '--network',
      network,
      '--group-add',
      dockerSocketGroup(),
      '-v',
      '/var/run/docker.sock:/var/run/docker.sock',
      '-e',
      'FLOTILLA_HUB_URL=mqtt://hub:1883',
      '-e',
      `FLOTILLA_DEVICE_ID=${deviceId}`,
      image('agent', 'arm64'),
      'agent',
      '--label',
      `site=arm-${suffix}`,
      '--resync-interval',
      '2s',
    );
    const agentImage = JSON.parse(await docker('image', 'inspect', image('agent', 'arm64'))) as { Architecture: string }[];
    expect(agentImage[0]!.Architecture).toBe('arm64');

    const device = await waitFor(
      'the arm64 agent to come online and report its host',
      // Online comes with the agent's status message, the host with its first state report: under qemu one can precede the other.
      async () => (await devices()).find((d) => d.id === deviceId && d.online && d.host),
      { timeoutMs: 90_000, intervalMs: 500 },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\nagent log:\n${await logsOf(agentName)}`);
    });
    // The architecture the agent's own process sees: arm64 code, run by qemu-aarch64.
    expect(device.host?.arch).toBe('arm64');
    expect(device.host?.nodeVersion).toMatch(/^v?20\./);
    const agent = await inspect(agentName);
    expect(agent.State.Running).toBe(true);
  });

  it('deploys an app on the engine: the container answers and the device reports it running', async () => {
    const images = await ensureTestImages();
    const port = await freePort();
    const spec = join(dir, 'app.yaml');
    writeFileSync(
      spec,
      stringify({
        name: app,
        scheduling: { selectors: { site: `arm-${suffix}` } },
        spec: { containers: [{ name: 'web', image: images.v1, ports: [`127.0.0.1:${port}:80`] }] },
      }),
    );
    const applied = await runCli(['--hub', hubUrl, 'apply', '-f', spec]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout.trim()).toBe(`app/${app} created (revision 1)`);

    await waitFor(
      'the app to answer on its port',
      async () => (await (await fetchSoon(`http://127.0.0.1:${port}/`)).text()).trim() === 'v1',
      {
        timeoutMs: 120_000,
        intervalMs: 500,
      },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\nagent log:\n${await logsOf(agentName)}`);
    });
    const ids = await containerIds(`flotilla.app=${app}`);
    expect(ids).toHaveLength(1);
    const container = await inspect(ids[0]!);
    expect(container.Config.Labels).toMatchObject({ 'flotilla.app': app, 'flotilla.device': deviceId });

    const running = await waitFor(
      'the device to report the app running',
      async () => (await devices()).find((d) => d.id === deviceId)?.apps.find((a) => a.name === app && a.phase === 'running'),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(running.phase).toBe('running');
  });
});
