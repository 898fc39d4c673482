/**
 * What holds an update back, on a real Docker Engine: the app's own update
 * lock (until it is released, or the operator forces the revision), and a
 * disk too small for the new image plus the reserve (the running version
 * stays up, the device says why).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
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
import { answer, DeviceApps } from './support/device-apps.js';
import { containerIds, docker, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-guards-${suffix}`;

describeDocker('update lock and disk pre-flight check', () => {
  let images: TestImages;
  let hub: HubProcess;
  let agent: AgentProcess;
  const device = new DeviceApps(() => hub, deviceId, { update: { minReadySeconds: 1 } });
  const withVolume = (app: string, image: string, port: number) => ({
    image,
    ports: [`127.0.0.1:${port}:80`],
    volumes: [`${app}-data:/data`],
  });

  const startAgent = (extraArgs: string[] = []) =>
    startAgentProcess(hub, deviceId, {}, { namePrefix: `${deviceId}.`, extraArgs }, agentDir);
  const agentDir = scratchDir('flotilla-agent-guards-');

  beforeAll(async () => {
    images = await ensureTestImages();
    hub = await startHubProcess();
    agent = startAgent();
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
  });

  afterAll(async () => {
    await stopAll();
    for (const app of device.names) await removeContainersAndVolumes(`flotilla.app=${app}`, [`${app}-data`]);
  });

  it('defers the swap while the app holds its update lock, and swaps once it is released', async () => {
    const app = `e2e-lock-${suffix}`;
    const port = await freePort();
    await device.deploy(app, await retagInRegistry(images.v1, `v1-${app}`), port, 'v1', { volumes: [`${app}-data:/data`] });
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    await docker('exec', v1Id!, 'touch', '/data/updates.lock');

    await device.apply(app, withVolume(app, await retagInRegistry(images.v2, `v2-lock-${suffix}`), port));
    const waiting = await waitFor('the device to say it waits for the lock', async () => {
      const s = await device.state(app);
      return s?.message?.includes('update lock') ? s : undefined;
    });
    expect(waiting.phase).toBe('pending');
    expect(waiting.message).toMatch(/^revision 2 is waiting for the app to release its update lock \/.*\/updates\.lock$/);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await answer(port)).toBe('v1');

    await docker('exec', v1Id!, 'rm', '/data/updates.lock');
    await waitFor('v2 after the lock is released', async () => (await answer(port).catch(() => '')) === 'v2', { timeoutMs: 30_000 });
  });

  it('swaps at once when the operator forces the revision past the lock', async () => {
    const app = `e2e-force-${suffix}`;
    const port = await freePort();
    await device.deploy(app, await retagInRegistry(images.v1, `v1-${app}`), port, 'v1', { volumes: [`${app}-data:/data`] });
    const [v1Id] = await containerIds(`flotilla.app=${app}`);
    await docker('exec', v1Id!, 'touch', '/data/updates.lock');
    await device.apply(app, withVolume(app, await retagInRegistry(images.v2, `v2-force-${suffix}`), port));
    await waitFor('the device to wait for the lock', async () => (await device.state(app))?.message?.includes('update lock'));

    const forced = await runCli(['--hub', hub.url, 'rollout', 'force', app]);
    expect(forced.stdout.trim()).toBe(`app/${app} revision 2 forced`);
    await waitFor('v2 despite the lock', async () => (await answer(port).catch(() => '')) === 'v2', { timeoutMs: 30_000 });
  });

  it('refuses an update when the image plus the reserve does not fit, keeping the running version', async () => {
    const app = `e2e-disk-${suffix}`;
    const port = await freePort();
    await device.deploy(app, await retagInRegistry(images.v1, `v1-${app}`), port, 'v1', { volumes: [`${app}-data:/data`] });
    // The same agent again, now asking to keep 100 TiB free: no image fits.
    await agent.proc.stop();
    agent = startAgent(['--disk-reserve', '102400g']);

    const v2 = await retagInRegistry(images.v2, `v2-disk-${suffix}`);
    await device.apply(app, withVolume(app, v2, port));
    const refused = await waitFor('the device to refuse the pull', async () => {
      const s = await device.state(app);
      return s?.phase === 'failed' && s.revision === 2 ? s : undefined;
    });
    expect(refused.message).toMatch(
      /^cannot pull .*v2-disk-.*: not enough disk: the image needs [\d.]+ [KM]iB plus a reserve of 100\.0 TiB, but only .* are free under \//,
    );
    expect(await answer(port)).toBe('v1');
    expect(await docker('image', 'ls', '-q', v2)).toBe('');
  });
});
