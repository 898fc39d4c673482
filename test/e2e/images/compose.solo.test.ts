/**
 * The demo stack, as a user starts it: `docker-compose -f docker/compose.yaml up` (Debian's
 * docker-compose v1) pulls the hub and agent manifest lists from the loopback registry and
 * runs a hub and two agents; one `flotilla apply` reaches both devices, each runs the app
 * on the engine and reports it running. `down -v` then removes the stack, and the test the
 * containers the agents started (they outlive the stack, as on a device).
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../../support/ports.js';
import { runCli, scratchDir, stopAll } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from '../support/docker-cli.js';
import { ensureTestImages } from '../support/images.js';
import { COMPOSE_FILE, describeImages, dockerSocketGroup, fetchSoon, REPO, VERSION } from './built-images.js';

const run = promisify(execFile);
const suffix = Math.random().toString(36).slice(2, 8);
const project = `flotilla-e2e-${suffix}`;
const app = `e2e-compose-${suffix}`;
const DEVICES = ['demo-device-1', 'demo-device-2'];

interface Device {
  id: string;
  online: boolean;
  apps: { name: string; phase: string }[];
}

describeImages('docker/compose.yaml: a hub and two agents from the built images', () => {
  const dir = scratchDir('flotilla-e2e-compose-');
  let env: NodeJS.ProcessEnv = {};
  let hubUrl = '';

  const compose = async (...args: string[]) => {
    try {
      return await run('docker-compose', ['-p', project, '-f', COMPOSE_FILE, ...args], {
        env: { ...process.env, ...env },
        timeout: 180_000,
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`docker-compose ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
    }
  };
  const devices = async (): Promise<Device[]> =>
    ((await (await fetchSoon(`${hubUrl}/api/v1/devices`)).json()) as { items: Device[] }).items;
  const stackLogs = async () =>
    (await compose('logs', '--no-color', '--tail', '20').catch((err: Error) => ({ stdout: err.message }))).stdout;

  beforeAll(async () => {
    const [mqtt, ws, http] = [await freePort(), await freePort(), await freePort()];
    env = {
      FLOTILLA_IMAGE_REPO: REPO,
      FLOTILLA_TAG: VERSION,
      FLOTILLA_DOCKER_GID: dockerSocketGroup(),
      FLOTILLA_MQTT_PORT: `${mqtt}`,
      FLOTILLA_WS_PORT: `${ws}`,
      FLOTILLA_HTTP_PORT: `${http}`,
    };
    hubUrl = `http://127.0.0.1:${http}`;
    // `up` alone runs whatever an earlier run left under the same tag; the images just built are in the registry.
    await compose('pull', '--quiet');
    await compose('up', '-d');
  });

  afterAll(async () => {
    await stopAll();
    await compose('down', '-v').catch(() => undefined);
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('starts the hub and both agents, which come online', async () => {
    const ps = await docker(
      'ps',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--format',
      '{{.Label "com.docker.compose.service"}}',
    );
    expect(ps.split('\n').sort()).toEqual(['agent-1', 'agent-2', 'hub']);
    await waitFor(
      'both agents online',
      async () => {
        const online = (await devices()).filter((d) => d.online).map((d) => d.id);
        return DEVICES.every((id) => online.includes(id));
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await stackLogs()}`);
    });
  });

  it('the hub image serves the web console: the page and every asset it names', async () => {
    const page = await fetchSoon(`${hubUrl}/`);
    expect(page.status).toBe(200);
    const assets = [...(await page.text()).matchAll(/\/console\/assets\/[^"]+/g)].map((match) => match[0]);
    expect(assets.some((asset) => asset.endsWith('.js'))).toBe(true);
    for (const asset of assets) expect((await fetchSoon(`${hubUrl}${asset}`)).status, asset).toBe(200);
  });

  it('one apply reaches both devices: each runs the app and reports it running', async () => {
    const images = await ensureTestImages();
    const spec = join(dir, 'app.yaml');
    writeFileSync(
      spec,
      stringify({ name: app, scheduling: { selectors: { site: 'lab' } }, spec: { containers: [{ name: 'web', image: images.v1 }] } }),
    );
    const applied = await runCli(['--hub', hubUrl, 'apply', '-f', spec]);
    expect(applied.stderr).toBe('');
    expect(applied.stdout.trim()).toBe(`app/${app} created (revision 1)`);

    const reported = await waitFor(
      'both devices to report the app running',
      async () => {
        const all = await devices();
        const phases = DEVICES.map((id) => all.find((d) => d.id === id)?.apps.find((a) => a.name === app)?.phase);
        return phases.every((p) => p === 'running') && phases;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await stackLogs()}`);
    });
    expect(reported).toEqual(['running', 'running']);

    // On the engine: one running container per device, named with that agent's prefix.
    const ids = await containerIds(`flotilla.app=${app}`);
    const containers = await Promise.all(ids.map((id) => inspect(id)));
    expect(containers.map((c) => c.Config.Labels['flotilla.device']).sort()).toEqual(DEVICES);
    expect(containers.map((c) => c.Name).sort()).toEqual(DEVICES.map((d) => `/${d}-${app}_web`));
    expect(containers.every((c) => c.State.Running)).toBe(true);
  });

  it('down -v removes the stack and its volumes', async () => {
    await compose('down', '-v');
    expect(await docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`)).toBe('');
    expect(await docker('volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`)).toBe('');
    await removeContainersAndVolumes(`flotilla.app=${app}`);
    expect(await containerIds(`flotilla.app=${app}`)).toEqual([]);
  });
});
