/**
 * A fleet rollout over five devices: two real agents on the Docker Engine and
 * three simulated devices running the real agent code over an in-memory
 * runtime. Canary → pause → resume → everyone updated; then a revision that
 * crashes on its canary pauses the rollout and sends the canary back.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RolloutStatus } from '../../shared/index.js';
import { type HubProcess, runCli, scratchDir, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { waitFor } from '../support/wait.js';
import { removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { FleetApp, sameEverywhere } from './support/fleet-app.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-rollout-${suffix}`;
const real = [`e2e-ro-${suffix}-a`, `e2e-ro-${suffix}-b`];

describeDocker('fleet rollout over real and simulated agents', () => {
  let images: TestImages;
  let hub: HubProcess;
  let fleet: Fleet;
  let all: string[];
  const dir = scratchDir('flotilla-e2e-');

  const cli = async (...args: string[]) => runCli(['--hub', hub.url, ...args]);
  const status = async () => JSON.parse((await cli('rollout', 'status', app, '-o', 'json')).stdout) as RolloutStatus;

  const fleetApp = new FleetApp(app, { fleet: suffix }, dir, { minReadySeconds: 1, healthTimeout: '10s' });
  const apply = (image: string, rollout: object | undefined) => fleetApp.apply(cli, image, rollout);
  const onDevices = () => fleetApp.onDevices(cli, all);
  const everywhere = (value: string) => sameEverywhere(all, value);
  const realImages = () => fleetApp.realImages();

  beforeAll(async () => {
    images = await ensureTestImages();
    hub = await startHubProcess();
    for (const id of real) startAgentProcess(hub, id, { fleet: suffix }, { namePrefix: `${id}.` });
    fleet = await startFleet({
      hubUrl: hub.mqttUrl,
      count: 3,
      idPrefix: `e2e-ro-${suffix}-sim`,
      labels: () => ({ fleet: suffix }),
      behaviour: (image) => (image.includes('/crash:') ? { crash: true } : undefined),
    });
    all = [...real, ...fleet.ids].sort();
    await waitFor('five devices', async () => Object.keys(await onDevices()).length === 5);
  });

  afterAll(async () => {
    await fleet?.close();
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('updates the canary, pauses, and after resume updates every device', async () => {
    const v1 = await retagInRegistry(images.v1, `v1-${app}`);
    const v2 = await retagInRegistry(images.v2, `v2-${app}`);
    await apply(v1, undefined);
    await waitFor('v1 everywhere', async () => JSON.stringify(await onDevices()) === JSON.stringify(everywhere('1 running')), {
      timeoutMs: 60_000,
    });

    await apply(v2, { canary: 1, pauseAfterCanary: true, batchSize: 2, failureThreshold: 1 });
    const paused = await waitFor(
      'the canary to be done',
      async () => {
        const s = await status();
        return s.phase === 'paused' ? s : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const canary = paused.devices.filter((d) => d.canary);
    expect(canary.map((d) => [d.id, d.state])).toEqual([[all[0], 'healthy']]);
    expect(await onDevices()).toEqual({ ...everywhere('1 running'), [all[0]!]: '2 running' });
    expect((await realImages())[all[0]!]).toBe(v2);

    expect((await cli('rollout', 'resume', app)).code).toBe(0);
    await waitFor('the rollout to complete', async () => (await status()).phase === 'complete', { timeoutMs: 90_000 });
    expect(await onDevices()).toEqual(everywhere('2 running'));
    expect(await realImages()).toEqual({ [real[0]!]: v2, [real[1]!]: v2 });
    for (const device of fleet.devices) {
      expect(
        device.runtime
          .containers()
          .filter((c) => c.state === 'running')
          .map((c) => c.image),
      ).toEqual([v2]);
    }
  });

  it('pauses when the canary of a crashing revision fails, and sends it back', async () => {
    const v2 = (await realImages())[real[0]!]!;
    const crash = await retagInRegistry(images.crash, `crash-${app}`);
    await apply(crash, { canary: 1, batchSize: 2, failureThreshold: 1 });
    const paused = await waitFor(
      'the rollout to pause',
      async () => {
        const s = await status();
        return s.phase === 'paused' ? s : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(paused.reason).toBeTruthy();
    expect(paused.devices.find((d) => d.id === all[0])).toMatchObject({ state: 'reverted', revision: 2 });

    await waitFor(
      'every device on revision 2 again',
      async () => JSON.stringify(await onDevices()) === JSON.stringify(everywhere('2 running')),
      { timeoutMs: 60_000 },
    );
    expect((await realImages())[all[0]!]).toBe(v2);
  });
});
