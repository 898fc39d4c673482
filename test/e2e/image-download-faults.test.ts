/**
 * The agent's own image download against a registry that misbehaves
 * (docs/image-downloads.md), through a proxy in front of the loopback
 * registry, with a 5 MB image (test/e2e/support/big-image.ts), a real hub, a
 * real agent process and the real engine:
 * - a registry that ignores Range: a break is continued by downloading the
 *   blob whole again (the bytes received twice are counted as resent), and the
 *   agent still delivers the image itself;
 * - one that ignores Range and keeps breaking: the agent hands the image to
 *   the engine's pull and says so (an event, and `via: engine` with the reason
 *   in the device's report);
 * - a blob whose bytes the proxy changes once: caught by its digest, fetched
 *   again, and never handed to the engine (one load, of the right image).
 * Each time the app runs and serves the sums of its data as they were built.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { type HubProcess, removeDir, startHubProcess, stopAll } from '../support/processes.js';
import { startRegistryProxy } from '../support/registry-proxy.js';
import { waitFor } from '../support/wait.js';
import { ensureBigImage, removeFromEngine } from './support/big-image.js';
import { docker } from './support/docker-cli.js';
import { DownloadDevice } from './support/download-device.js';
import { describeDocker } from './support/engine.js';
import { describeDevice } from './support/observe.js';

const suffix = Math.random().toString(36).slice(2, 8);
const MB = 1_000_000;

describeDocker('image download from a registry that misbehaves', () => {
  let hub: HubProcess;
  const cleanup = new Cleanup();

  beforeAll(async () => {
    hub = await startHubProcess();
  });
  afterEach(() => cleanup.run());
  afterAll(async () => {
    await stopAll();
    if (hub) removeDir(hub.dataDir);
  });

  async function setUp(variant: string) {
    const image = await ensureBigImage(variant, 'small');
    await removeFromEngine(image);
    cleanup.add('the image in the engine', () => removeFromEngine(image));
    const proxy = await startRegistryProxy();
    cleanup.add('registry proxy', () => proxy.close());
    const device = new DownloadDevice(hub, `e2e-dl-${variant}-${suffix}`);
    cleanup.add('device', async () => {
      await device.agent.proc.stop();
      await device.remove();
      removeDir(device.agent.dataDir);
    });
    await device.registered();
    return { image, proxy, device, reference: proxy.via(image.image) };
  }

  it('downloads a blob whole again when the registry ignores Range after a break, and delivers the image itself', async () => {
    const { image, proxy, device, reference } = await setUp('norange-whole');
    proxy.ignoreRange(true);
    proxy.cutEvery(1 * MB);

    await device.deploy(reference);
    // One break only: the link heals once a blob was cut, before the agent's first retry.
    await waitFor('a blob cut', () => proxy.deliveries.some((d) => d.end === 'cut'), { timeoutMs: 60_000, intervalMs: 20 });
    proxy.cutEvery(undefined);
    await device.running(image);

    const cut = proxy.deliveries.find((d) => d.end === 'cut')!;
    // The agent asked to continue; the registry sent the whole blob from byte 0 instead.
    const retried = proxy.deliveries.filter((d) => d.digest === cut.digest && d.range !== undefined);
    expect(retried.length).toBeGreaterThanOrEqual(1);
    expect(retried.every((d) => d.status === 200 && d.start === 0)).toBe(true);
    expect(proxy.deliveries.filter((d) => d.digest === cut.digest && d.end === 'complete')).toHaveLength(1);

    expect(await device.imageId(reference)).toBe(image.config.digest);
    const report = await device.download(reference);
    expect(report).toMatchObject({ state: 'present', via: 'agent' });
    // What the break had stored was received again with the whole blob.
    expect(report?.resentBytes).toBe(cut.sent);
    expect((await describeDevice(hub, device.deviceId)).downloads?.resentBytes).toBe(cut.sent);
  });

  it('hands the image to the engine when the registry ignores Range and keeps breaking, and says so', async () => {
    const { image, proxy, device, reference } = await setUp('norange-engine');
    proxy.ignoreRange(true);
    proxy.cutEvery(1 * MB);

    await device.deploy(reference);
    const [fallback] = await waitFor('the fallback event', async () => {
      const events = await device.events('image-download-fallback');
      return events.length > 0 && events;
    });
    expect(fallback!.app).toBe(device.app);
    expect(fallback!.message).toContain(reference);
    // While the engine pulls, the device's report says who downloads and why.
    const pulling = await waitFor('the report of the engine pulling', async () => {
      const report = await device.download(reference);
      return report?.via === 'engine' && report.message !== undefined && report;
    });
    expect(fallback!.message).toContain(pulling.message);
    // The link heals, so the engine's own pull (which also restarts the blobs the registry will not resume) can finish.
    proxy.cutEvery(undefined);
    await device.running(image);

    expect(await device.imageId(reference)).toBe(image.config.digest);
    expect(await device.download(reference)).toMatchObject({ state: 'present', via: 'engine' });
  });

  it('catches a corrupted blob by its digest, fetches it again and never hands it to the engine', async () => {
    const { image, proxy, device, reference } = await setUp('corrupt');
    const data = image.layers[1]!;
    proxy.corrupt(data.digest, 1);
    const since = Math.floor(Date.now() / 1000);

    await device.deploy(reference);
    await device.running(image);

    const deliveries = proxy.deliveries.filter((d) => d.digest === data.digest);
    expect(deliveries.map((d) => [d.corrupted, d.end])).toEqual([
      [true, 'complete'],
      [false, 'complete'],
    ]);
    expect(await device.imageId(reference)).toBe(image.config.digest);
    const report = await device.download(reference);
    expect(report).toMatchObject({ state: 'present', via: 'agent', resentBytes: data.size });
    expect(await device.events('image-download-failed')).toEqual([]);
    // The engine loaded one archive in all: the image with the good blob.
    const loads = await docker(
      'events',
      '--since',
      `${since}`,
      '--until',
      `${Math.ceil(Date.now() / 1000)}`,
      '--filter',
      'type=image',
      '--filter',
      'event=load',
    );
    expect(loads.split('\n').filter((line) => line !== '')).toHaveLength(1);
  });
});
