/**
 * An app update and its window (spec.update.window) on a real Docker Engine,
 * with a real hub and agent process and images from the loopback registry:
 * a new revision is pulled at once but swapped in only when the window opens
 * on the device's clock, and an operator can force it past a closed window.
 *
 * The agent resyncs only every 10 minutes here, so the swap at the window's
 * opening is the reconcile loop waking by itself, not a periodic look.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { type HubProcess, runCli, scratchDir, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { answer, DeviceApps } from './support/device-apps.js';
import { docker, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-window-${suffix}`;

/** `HH:MM:SS` in UTC. */
const clock = (instant: Date) => instant.toISOString().slice(11, 19);
/** As the agent writes it in its message: whole seconds. */
const iso = (instant: Date) => instant.toISOString().replace(/\.\d{3}Z$/, 'Z');

describeDocker('app updates and their update window', () => {
  let images: TestImages;
  let hub: HubProcess;
  const device = new DeviceApps(() => hub, deviceId, { update: { minReadySeconds: 1 } });
  const pulled: string[] = [];

  beforeAll(async () => {
    images = await ensureTestImages();
    hub = await startHubProcess();
    startAgentProcess(
      hub,
      deviceId,
      {},
      { namePrefix: `${deviceId}.`, extraArgs: ['--resync-interval', '10m'] },
      scratchDir('flotilla-agent-window-'),
    );
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
  });

  afterAll(async () => {
    await stopAll();
    for (const app of device.names) await removeContainersAndVolumes(`flotilla.app=${app}`);
    for (const image of pulled) await docker('image', 'rm', image).catch(() => undefined);
    device.removeFiles();
  });

  /** Deploys v1 of `app` and waits until it answers. */
  async function deployV1(app: string, port: number): Promise<void> {
    const v1 = await retagInRegistry(images.v1, `v1-${app}`);
    pulled.push(v1);
    await device.deploy(app, v1, port, 'v1');
  }

  /** Applies v2 with `window`; returns v2's image and the device's report once it says v2 waits for its window. */
  async function applyV2(app: string, port: number, window: object) {
    const v2 = await retagInRegistry(images.v2, `v2-${app}`);
    pulled.push(v2);
    await device.apply(app, { image: v2, ports: [`127.0.0.1:${port}:80`] }, { window });
    const waiting = await waitFor('the device to say v2 waits for its window', async () => {
      const s = await device.state(app);
      return s?.revision === 2 && s.message?.includes('update window') ? s : undefined;
    });
    return { v2, waiting };
  }

  it('pulls the new revision at once, keeps the old one running, and swaps when the window opens', async () => {
    const app = `e2e-window-${suffix}`;
    const port = await freePort();
    await deployV1(app, port);
    // A window that opens 8 seconds after the update is applied, for 10 minutes.
    const opens = new Date(Math.ceil((Date.now() + 8000) / 1000) * 1000);
    const window = { from: clock(opens), to: clock(new Date(opens.getTime() + 10 * 60_000)), timezone: 'UTC' };
    const { v2, waiting } = await applyV2(app, port, window);
    const seenWaitingAt = Date.now();

    expect(waiting.phase).toBe('pending');
    expect(waiting.message).toBe(`revision 2 waits for its update window ${window.from}–${window.to} UTC (opens ${iso(opens)})`);
    expect(await docker('image', 'ls', '-q', v2)).not.toBe('');
    expect(seenWaitingAt, 'the device was seen waiting before the window opened').toBeLessThan(opens.getTime());
    expect(await answer(port)).toBe('v1');

    await waitFor('v2 once the window opened', async () => (await answer(port).catch(() => '')) === 'v2', { timeoutMs: 40_000 });
    await waitFor('the device to report v2 running', async () => {
      const s = await device.state(app);
      return s?.revision === 2 && s.phase === 'running';
    });
  });

  it('swaps at once when the operator forces the revision past a closed window', async () => {
    const app = `e2e-window-force-${suffix}`;
    const port = await freePort();
    const far = new Date(Date.now() + 6 * 3600_000);
    const window = { from: clock(far), to: clock(new Date(far.getTime() + 3600_000)), timezone: 'UTC' };
    await deployV1(app, port);
    const { waiting } = await applyV2(app, port, window);
    expect(waiting.message).toMatch(/^revision 2 waits for its update window \d\d:\d\d:\d\d–\d\d:\d\d:\d\d UTC \(opens \S+Z\)$/);
    expect(await answer(port)).toBe('v1');

    const forced = await runCli(['--hub', hub.url, 'rollout', 'force', app]);
    expect(forced.stdout.trim()).toBe(`app/${app} revision 2 forced`);
    await waitFor('v2 despite the closed window', async () => (await answer(port).catch(() => '')) === 'v2', { timeoutMs: 30_000 });
  });
});
