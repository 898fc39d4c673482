/**
 * The agent's own image download over a link that breaks (docs/image-downloads.md):
 * a 50 MB image of five layers (test/e2e/support/big-image.ts), named through a
 * proxy in front of the loopback registry that cuts every blob body after
 * 2 MB, or stalls one once. A real hub, a real agent process, the real engine;
 * the app applied with `flotilla apply`. What must hold, as an operator and
 * the registry see it:
 * - the app runs, and serves the sums of its data files as the image was built;
 * - the engine's image ID is the config blob's digest (what was loaded is what was pushed);
 * - the proxy sent at most 1.05 × the image's compressed size: each break
 *   continued from the byte where it stopped (the engine's own pull gives a
 *   layer five attempts, so it never gets this image: bench/image-download.ts);
 * - the events say the download resumed, and the device reports nothing resent.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { type HubProcess, removeDir, startHubProcess, stopAll } from '../support/processes.js';
import { startRegistryProxy } from '../support/registry-proxy.js';
import { type BigImage, ensureBigImage, removeFromEngine } from './support/big-image.js';
import { DOWNLOAD_TIMEOUT_MS, DownloadDevice, resumedOffsets } from './support/download-device.js';
import { describeDocker } from './support/engine.js';
import { describeDevice } from './support/observe.js';

const suffix = Math.random().toString(36).slice(2, 8);
const MB = 1_000_000;

describeDocker('image download through a link that breaks', () => {
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

  async function setUp(variant: string, agentArgs: string[] = []) {
    const image = await ensureBigImage(variant, 'big');
    await removeFromEngine(image);
    cleanup.add('the image in the engine', () => removeFromEngine(image));
    const proxy = await startRegistryProxy();
    cleanup.add('registry proxy', () => proxy.close());
    const device = new DownloadDevice(hub, `e2e-dl-${variant}-${suffix}`, agentArgs);
    cleanup.add('device', async () => {
      await device.agent.proc.stop();
      await device.remove();
      removeDir(device.agent.dataDir);
    });
    await device.registered();
    return { image, proxy, device, reference: proxy.via(image.image) };
  }

  /** What every test here checks once the app runs: the image loaded is the one pushed, and it was received about once. */
  async function deliveredOnce(image: BigImage, device: DownloadDevice, reference: string, sent: number): Promise<void> {
    expect(await device.imageId(reference)).toBe(image.config.digest);
    expect(sent).toBeLessThanOrEqual(1.05 * (image.layerBytes + image.config.size));
    const report = await device.download(reference);
    expect(report).toMatchObject({ state: 'present', via: 'agent' });
    expect(report?.resentBytes ?? 0).toBe(0);
    // The device's running sums say the same: all of it received once, nothing twice.
    const totals = (await describeDevice(hub, device.deviceId)).downloads;
    expect(totals?.resentBytes).toBe(0);
    expect(totals?.bytes).toBeGreaterThanOrEqual(image.layerBytes);
    expect(totals?.bytes).toBeLessThanOrEqual(1.05 * (image.layerBytes + image.config.size));
    expect((await device.events('image-download-completed')).length).toBeGreaterThanOrEqual(1);
  }

  it('finishes a 50 MB image cut every 2 MB, receiving it about once, and the app runs', {
    timeout: DOWNLOAD_TIMEOUT_MS + 30_000,
  }, async () => {
    const { image, proxy, device, reference } = await setUp('cuts');
    proxy.cutEvery(2 * MB);

    await device.deploy(reference);
    await device.running(image);

    const cuts = proxy.deliveries.filter((d) => d.end === 'cut').length;
    expect(cuts).toBeGreaterThanOrEqual(Math.floor(image.layerBytes / (2 * MB)) - image.layers.length);
    // Every resumed request asked for the byte after the last one received, and the registry honoured it.
    const resumedRequests = proxy.deliveries.filter((d) => d.range !== undefined);
    expect(resumedRequests.length).toBeGreaterThanOrEqual(cuts - image.layers.length);
    expect(resumedRequests.every((d) => d.status === 206 && d.start > 0)).toBe(true);
    await deliveredOnce(image, device, reference, proxy.blobBytes);

    // One resumed event per blob per minute at most: every 12 MiB data layer was cut, so each has one.
    const resumed = resumedOffsets(await device.events('image-download-resumed'));
    const dataLayers = image.layers.filter((layer) => layer.size > 2 * MB).map((layer) => layer.digest);
    expect(new Set(resumed.map((r) => r.digest))).toEqual(new Set(dataLayers));
    expect(resumed.every((r) => r.offset > 0)).toBe(true);
  });

  it('finishes when the link stalls once mid-layer, after its stall timeout', { timeout: DOWNLOAD_TIMEOUT_MS + 30_000 }, async () => {
    const { image, proxy, device, reference } = await setUp('stall', ['--download-stall-timeout', '2s']);
    const layer = image.layers[2]!;
    proxy.stallOnce(5 * MB, layer.digest);

    await device.deploy(reference);
    await device.running(image);

    const stalled = proxy.deliveries.filter((d) => d.end === 'stalled');
    expect(stalled).toHaveLength(1);
    const resumedAt = proxy.deliveries.find((d) => d.digest === layer.digest && d.status === 206);
    expect(resumedAt?.start).toBe(5 * MB);
    await deliveredOnce(image, device, reference, proxy.blobBytes);
    expect(resumedOffsets(await device.events('image-download-resumed'))).toContainEqual({ digest: layer.digest, offset: 5 * MB });
  });
});
