/**
 * The agent killed with SIGKILL in the middle of a layer, and started again on
 * the same data dir (docs/image-downloads.md): its content store kept what it
 * had received, so the new process asks the registry for the rest of that
 * layer only, and for none of the layers it had finished.
 *
 * A 50 MB image (test/e2e/support/big-image.ts) through a proxy in front of the
 * loopback registry that records each blob request; between the agent and the
 * proxy a thin link of 6 MiB/s (test/support/thin-link.ts), so the kill can
 * land inside a 12 MiB layer, and what crossed the link is what the device
 * received. A real
 * hub, real agent processes, the real engine, the app applied with `flotilla apply`.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { type HubProcess, removeDir, startHubProcess, stopAll } from '../support/processes.js';
import { startRegistryProxy } from '../support/registry-proxy.js';
import { startThinLink } from '../support/thin-link.js';
import { waitFor } from '../support/wait.js';
import { ensureBigImage, referenceVia, removeFromEngine } from './support/big-image.js';
import { DOWNLOAD_TIMEOUT_MS, DownloadDevice, resumedOffsets } from './support/download-device.js';
import { describeDocker } from './support/engine.js';
import { describeDevice } from './support/observe.js';

const suffix = Math.random().toString(36).slice(2, 8);
const MiB = 1024 * 1024;

describeDocker('agent killed in the middle of an image download', () => {
  let hub: HubProcess;
  const cleanup = new Cleanup();

  beforeAll(async () => {
    hub = await startHubProcess();
  });
  afterAll(async () => {
    await cleanup.run();
    await stopAll();
    if (hub) removeDir(hub.dataDir);
  });

  it('continues from the byte it had stored, downloads nothing twice, and the app runs', {
    timeout: DOWNLOAD_TIMEOUT_MS + 60_000,
  }, async () => {
    const image = await ensureBigImage('kill', 'big');
    await removeFromEngine(image);
    cleanup.add('the image in the engine', () => removeFromEngine(image));
    const proxy = await startRegistryProxy();
    cleanup.add('registry proxy', () => proxy.close());
    const link = startThinLink({ downBytesPerSecond: 6 * MiB });
    cleanup.add('thin link', () => link.close());
    const route = await link.route(proxy.port);
    const reference = referenceVia(image, route.address);
    const device = new DownloadDevice(hub, `e2e-dl-kill-${suffix}`);
    cleanup.add('device', async () => {
      await device.agent.proc.stop();
      await device.remove();
      removeDir(device.agent.dataDir);
    });
    await device.registered();

    await device.deploy(reference);
    const layer = image.layers[2]!;
    // The agent's content store (docs/image-downloads.md): the partial file's size is what it has stored of the layer.
    const partial = join(device.agent.dataDir, 'images', 'partial', layer.digest.replace(':', '-'));
    const storedBeforeKill = await waitFor(
      'the agent a third into the third layer',
      () => {
        const stored = existsSync(partial) ? statSync(partial).size : 0;
        return stored >= layer.size / 3 && stored;
      },
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    await device.agent.proc.stop(true);
    const sentBeforeKill = proxy.bytesFor(layer.digest);
    expect(sentBeforeKill).toBeLessThan(layer.size);
    const finishedBeforeKill = image.layers.slice(0, 2).map((l) => l.digest);
    const requestsBeforeKill = proxy.deliveries.length;

    await device.agent.restart();
    await device.running(image);

    // The new process asked for the third layer from where the old one had stored it, and for the first two not at all.
    const after = proxy.deliveries.slice(requestsBeforeKill);
    expect(after.filter((d) => finishedBeforeKill.includes(d.digest))).toEqual([]);
    const continued = after.find((d) => d.digest === layer.digest);
    expect(continued).toMatchObject({ status: 206, end: 'complete' });
    expect(continued!.start).toBeGreaterThanOrEqual(storedBeforeKill);
    expect(continued!.start).toBeLessThanOrEqual(sentBeforeKill);
    expect(continued!.start + continued!.sent).toBe(layer.size);
    const resumed = resumedOffsets(await device.events('image-download-resumed'));
    expect(resumed).toContainEqual({ digest: layer.digest, offset: continued!.start });

    // Counted where the device receives them, off the thin link: what the proxy sent also holds what waited in
    // buffers before the link at the kill, which a real link's far end would have lost the same way.
    expect(route.stats.bytesDown).toBeLessThanOrEqual(1.05 * (image.layerBytes + image.config.size));
    expect(await device.imageId(reference)).toBe(image.config.digest);
    const view = await describeDevice(hub, device.deviceId);
    expect(view.images?.find((entry) => entry.image === reference)).toMatchObject({ state: 'present', via: 'agent' });
    // What was in flight at the kill never reached the agent: it counts nothing as received twice.
    expect(view.downloads?.resentBytes ?? 0).toBe(0);
  });
});
