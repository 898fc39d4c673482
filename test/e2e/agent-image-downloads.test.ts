/**
 * The agent gets its images itself, as an operator sees it through the hub:
 * a real agent process with `--downlink-rate`, on the real Docker Engine,
 * and apps whose images are only in the loopback registry.
 * - A paced download: the state report's line for the image goes from
 *   downloading (bytes of total, a rate) to present; the app's phase says the
 *   progress while it pulls; the device's download totals count it, and
 *   still do after the agent restarts; the events come in order.
 * - `spec.update.pull: engine`: the engine pulls, the report says so, the
 *   totals count nothing.
 * - A prefetch: with the rollout paused after its canary (a simulated
 *   device), the pending real device downloads the new revision's image
 *   while it runs the old one, and once resumed swaps without downloading.
 * - `--download-budget`: once the day's bytes are spent the download waits
 *   for the device's next midnight, reported and said once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeviceView, ImageDownload, RolloutStatus } from '../../shared/index.js';
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
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { waitFor } from '../support/wait.js';
import { type BigImage, ensureBigImage } from './support/big-image.js';
import { answer, DeviceApps } from './support/device-apps.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { FleetApp } from './support/fleet-app.js';
import { ensureTestImages } from './support/images.js';
import { describeDevice, storedEvents } from './support/observe.js';

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-img-${suffix}-b`;
const RATE = 256 * 1024;
const DOWNLOAD_MS = 120_000;

/** `pulling IMG: 1.2 MiB of 4.0 MiB at 256.0 KiB/s`. */
const PROGRESS = /^pulling \S+: [\d.]+ (B|KiB|MiB) of [\d.]+ MiB at [\d.]+ (B|KiB|MiB)\/s$/;

describeDocker('image downloads by the agent itself', () => {
  let hub: HubProcess;
  let agent: AgentProcess;
  let fleet: Fleet | undefined;
  let paced: BigImage;
  let engineSide: BigImage;
  let prefetched: BigImage;
  let budgeted: BigImage;
  const device = new DeviceApps(() => hub, deviceId, { update: { minReadySeconds: 0 } });
  const cli = (...args: string[]) => runCli(['--hub', hub.url, ...args]);
  const line = async (image: string): Promise<ImageDownload | undefined> =>
    (await describeDevice(hub, deviceId)).images?.find((entry) => entry.image === image);
  const imageEvents = async () => (await storedEvents(hub, deviceId)).filter((e) => e.type.startsWith('image-download-'));

  beforeAll(async () => {
    // Fixed variants: pushed to the registry once, ever; what a previous run left in the engine goes first.
    [paced, engineSide, prefetched, budgeted] = await Promise.all([
      ensureBigImage('agent-paced', 'small'),
      ensureBigImage('agent-engine', 'small'),
      ensureBigImage('agent-prefetch', 'small'),
      ensureBigImage('agent-budget', 'small'),
    ]);
    for (const image of [paced, engineSide, prefetched, budgeted]) await removeImage(image.image);
    hub = await startHubProcess();
    agent = startAgentProcess(hub, deviceId, { fleet: suffix }, { namePrefix: `${deviceId}.`, extraArgs: ['--downlink-rate', '256k'] });
    await waitFor('the agent to register', async () => (await cli('describe', 'device', deviceId)).code === 0, { timeoutMs: 30_000 });
  });

  afterAll(async () => {
    await fleet?.close();
    await stopAll();
    for (const app of [...device.names, `e2e-img-${suffix}-pre`]) await removeContainersAndVolumes(`flotilla.app=${app}`);
    for (const image of [paced, engineSide, prefetched, budgeted]) if (image) await removeImage(image.image);
    device.removeFiles();
  });

  it('downloads a paced image, reporting its progress, then present, with the totals and the events in order', async () => {
    const app = `e2e-img-${suffix}-paced`;
    const port = await freePort();
    await device.apply(app, { image: paced.image, ports: [`127.0.0.1:${port}:80`] });

    const seen: { entry?: ImageDownload; message?: string }[] = [];
    await waitFor(
      `${app} running its downloaded image`,
      async () => {
        const view = await describeDevice(hub, deviceId);
        const state = view.apps.find((a) => a.name === app);
        seen.push({ entry: view.images?.find((e) => e.image === paced.image), ...(state?.message ? { message: state.message } : {}) });
        return state?.phase === 'running' && (await answer(port)) === paced.expectedIndex;
      },
      { timeoutMs: DOWNLOAD_MS, intervalMs: 300 },
    );

    const midway = seen.flatMap(({ entry }) =>
      entry?.state === 'downloading' && entry.total !== undefined && entry.bytes > 0 && entry.bytes < entry.total ? [entry] : [],
    );
    expect(midway.length).toBeGreaterThan(0);
    expect(midway[0]).toMatchObject({ via: 'agent', app, revision: 1 });
    expect(midway.some((e) => (e.rate ?? 0) > 0)).toBe(true);
    expect(seen.some(({ message }) => message !== undefined && PROGRESS.test(message))).toBe(true);

    const done = await line(paced.image);
    expect(done).toMatchObject({ state: 'present', via: 'agent', app, revision: 1 });
    expect(done!.total).toBe(paced.layerBytes + paced.config.size);
    expect(done!.bytes).toBe(done!.total);

    const { downloads } = await describeDevice(hub, deviceId);
    expect(downloads).toMatchObject({ images: 1, resentBytes: 0, rateLimit: RATE });
    expect(downloads!.bytes).toBe(done!.total);

    const events = await imageEvents();
    expect(events.map((e) => e.type)).toEqual(['image-download-started', 'image-download-completed']);
    expect(events.every((e) => e.app === app)).toBe(true);
    expect(events[0]!.message).toContain(`downloading ${paced.image} for app ${app} revision 1`);
    expect(events[1]!.message).toMatch(/is in the engine: [\d.]+ MiB downloaded in \d+(\.\d)? s/);

    // The totals live in the data dir: a restarted agent reports them as they were.
    await agent.proc.stop();
    await agent.restart();
    await waitFor(
      'the restarted agent to report',
      async () => {
        const view = await describeDevice(hub, deviceId);
        return view.online && view.downloads?.images === 1 && view.apps.find((a) => a.name === app)?.phase === 'running';
      },
      { timeoutMs: 30_000 },
    );
    expect((await describeDevice(hub, deviceId)).downloads).toMatchObject({ bytes: downloads!.bytes, since: downloads!.since });
  });

  it("has the engine pull the image of an app that asks for the engine's pull, and says so", async () => {
    const before = (await describeDevice(hub, deviceId)).downloads;
    const app = `e2e-img-${suffix}-engine`;
    const port = await freePort();
    await device.apply(app, { image: engineSide.image, ports: [`127.0.0.1:${port}:80`] }, { pull: 'engine' });
    await waitFor(
      `${app} running`,
      async () => (await device.state(app))?.phase === 'running' && (await answer(port)) === engineSide.expectedIndex,
      { timeoutMs: DOWNLOAD_MS },
    );
    expect(await line(engineSide.image)).toMatchObject({ state: 'present', via: 'engine', app });
    const started = (await imageEvents()).filter((e) => e.app === app);
    expect(started.map((e) => e.type)).toEqual(['image-download-started', 'image-download-completed']);
    expect(started[0]!.message).toContain('spec.update.pull: engine');
    // The agent downloaded nothing of it.
    expect((await describeDevice(hub, deviceId)).downloads).toMatchObject({ bytes: before!.bytes, images: before!.images });
  });

  it('downloads the next revision ahead while its rollout waits, starting nothing, and the swap downloads nothing', async () => {
    const app = `e2e-img-${suffix}-pre`;
    const { v1 } = await ensureTestImages();
    // The canary sorts first (…-a-0 before …-b): a simulated device, healthy at once.
    fleet = await startFleet({ hubUrl: hub.mqttUrl, count: 1, idPrefix: `e2e-img-${suffix}-a`, labels: () => ({ fleet: suffix }) });
    const devices = [...fleet.ids, deviceId];
    const fleetApp = new FleetApp(app, { fleet: suffix }, scratchDir('flotilla-e2e-'), { minReadySeconds: 0 });
    const phases = () => fleetApp.onDevices(cli, devices);

    await fleetApp.apply(cli, v1);
    await waitFor('v1 everywhere', async () => Object.values(await phases()).every((p) => p === '1 running'), { timeoutMs: 60_000 });
    await fleetApp.apply(cli, prefetched.image, { canary: 1, pauseAfterCanary: true });
    await waitFor(
      'the rollout paused after its canary',
      async () => (JSON.parse((await cli('rollout', 'status', app, '-o', 'json')).stdout) as RolloutStatus).phase === 'paused',
      { timeoutMs: 60_000 },
    );

    await waitFor('the prefetched image present', async () => (await line(prefetched.image))?.state === 'present', {
      timeoutMs: DOWNLOAD_MS,
      intervalMs: 500,
    });
    expect(await line(prefetched.image)).toMatchObject({ app, revision: 2, prefetch: true, via: 'agent' });
    expect(await docker('image', 'inspect', '--format', '{{.Id}}', prefetched.image)).toBe(prefetched.config.digest);
    // Nothing of revision 2 runs on the pending device: its one container is still revision 1's.
    const view: DeviceView = await describeDevice(hub, deviceId);
    expect(view.apps.find((a) => a.name === app)).toMatchObject({ revision: 1, phase: 'running' });
    const ids = await containerIds(`flotilla.app=${app}`);
    expect(ids).toHaveLength(1);
    expect((await inspect(ids[0]!)).Config.Labels['flotilla.app-revision']).toBe('1');

    expect((await cli('rollout', 'resume', app)).code).toBe(0);
    await waitFor('revision 2 running on the real device', async () => (await phases())[deviceId] === '2 running', {
      timeoutMs: 60_000,
    });
    // The one download of the image was the prefetch.
    const downloads = (await imageEvents()).filter((e) => e.message.includes(prefetched.image));
    expect(downloads.filter((e) => e.type === 'image-download-started')).toHaveLength(1);
    expect(downloads[0]!.message).toContain(`for app ${app} revision 2 (ahead of its update)`);
  });

  it("holds a download once the day's budget is spent, until the device's next midnight, and says so once", async () => {
    const frugal = `e2e-img-${suffix}-c`;
    const apps = new DeviceApps(() => hub, frugal, { update: { minReadySeconds: 0 } });
    startAgentProcess(hub, frugal, {}, { namePrefix: `${frugal}.`, extraArgs: ['--download-budget', '1m', '--downlink-rate', '256k'] });
    await waitFor('the frugal agent to register', async () => (await cli('describe', 'device', frugal)).code === 0, { timeoutMs: 30_000 });
    const app = `e2e-img-${suffix}-budget`;
    await apps.apply(app, { image: budgeted.image });
    try {
      const held = await waitFor(
        'the download to wait for the next day',
        async () => {
          const entry = (await describeDevice(hub, frugal)).images?.find((e) => e.image === budgeted.image);
          return entry?.state === 'waiting' ? entry : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      const resumesAt = Date.parse(held.resumesAt!);
      expect(resumesAt).toBeGreaterThan(Date.now());
      expect(resumesAt - Date.now()).toBeLessThanOrEqual(26 * 3_600_000);
      expect(held.message).toMatch(/^today's download budget is spent; downloads go on at \S+Z$/);
      // The chunk that spent the budget is held before it is written: the line counts what was stored.
      expect(held.bytes).toBeGreaterThan(0);
      expect(held.bytes).toBeLessThan(held.total!);

      const view = await describeDevice(hub, frugal);
      expect(view.downloads?.budget).toMatchObject({ limit: 1024 * 1024, resetsAt: new Date(resumesAt).toISOString() });
      expect(view.downloads!.budget!.used).toBeGreaterThanOrEqual(1024 * 1024);
      expect(view.apps.find((a) => a.name === app)?.message).toBe(`pulling ${budgeted.image}: ${held.message}`);
      const waiting = await waitFor('the waiting event', async () => {
        const events = (await storedEvents(hub, frugal)).filter((e) => e.type === 'image-download-waiting');
        return events.length > 0 ? events : undefined;
      });
      expect(waiting).toHaveLength(1);
      expect(waiting[0]!.message).toContain("today's download budget of 1.0 MiB is spent");
      expect(await docker('image', 'inspect', budgeted.image).catch(() => 'absent')).toBe('absent');
    } finally {
      await removeContainersAndVolumes(`flotilla.app=${app}`);
      apps.removeFiles();
    }
  });
});

/** Removes an image from the engine if it holds it (and what a past run left running from it). */
async function removeImage(image: string): Promise<void> {
  await docker('image', 'rm', '-f', image).catch(() => undefined);
}
