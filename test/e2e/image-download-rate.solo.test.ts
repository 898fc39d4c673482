/**
 * `--downlink-rate 256k` on a thin link (docs/image-downloads.md): the agent's
 * image download keeps to the cap, and leaves the rest of the link to the
 * device's control traffic.
 *
 * One thin link (test/support/thin-link.ts) of 384 KiB/s with a 256 KiB modem
 * buffer carries everything the device receives: its MQTT connection to the
 * hub and its image download from a proxy in front of the loopback registry.
 * A real hub, a real agent process, the real engine; a 5 MB image
 * (test/e2e/support/big-image.ts), so the paced download takes about 20 s.
 *
 * What is measured, and where from:
 * - the download rate, from how fast the data layer's partial file grows in
 *   the agent's content store over the middle of the layer: within 10 % of
 *   256 KiB/s;
 * - the device's state reports keep coming while it downloads: `describe
 *   device` shows its progress grow;
 * - a round trip from the operator to the device and back (`flotilla exec …
 *   echo`, whose request crosses the thin link toward the device), before and
 *   during the download, and how long the hub's MQTT bytes waited in the
 *   modem's buffer, once the download is in its steady state (the buffers
 *   between the link and the agent's pacer, its socket and its reader, fill
 *   at the link's rate first): without the cap the download keeps that buffer
 *   full, with it the buffer stays nearly empty (the figures below).
 *
 * Solo: a rate and a latency are measured, so the machine must not be shared.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { type HubProcess, removeDir, runCli, startHubProcess, stopAll } from '../support/processes.js';
import { startRegistryProxy } from '../support/registry-proxy.js';
import { startThinLink } from '../support/thin-link.js';
import { waitFor } from '../support/wait.js';
import { ensureBigImage, referenceVia, removeFromEngine } from './support/big-image.js';
import { DownloadDevice } from './support/download-device.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages } from './support/images.js';
import { describeDevice } from './support/observe.js';

const suffix = Math.random().toString(36).slice(2, 8);
const KiB = 1024;
const CAP = 256 * KiB;
const LINK = 384 * KiB;
const QUEUE = 256 * KiB;

/**
 * Bounds between what a paced and a flooded link show. Measured here (2 cores, solo, three runs each): with
 * the cap the hub's messages waited 61–97 ms on average in the modem's buffer, and the quicker quarter of
 * the execs took 0–180 ms longer than before the download (some met a burst of the agent's reading, up to
 * 0.4 s more); without the cap they waited 621–788 ms, and every exec took 0.5–1.3 s longer.
 */
const MAX_MEAN_QUEUE_WAIT_MS = 250;
const MAX_ADDED_ROUND_TRIP_MS = 400;

describeDocker('image download paced by --downlink-rate on a thin link', () => {
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

  it('keeps to the cap within 10 %, and the device answers as fast during the download as before', { timeout: 240_000 }, async () => {
    const [image, web] = await Promise.all([ensureBigImage('rate', 'small'), ensureTestImages()]);
    await removeFromEngine(image);
    cleanup.add('the image in the engine', () => removeFromEngine(image));
    const proxy = await startRegistryProxy();
    cleanup.add('registry proxy', () => proxy.close());
    const link = startThinLink({ downBytesPerSecond: LINK, queueBytes: QUEUE });
    cleanup.add('thin link', () => link.close());
    const mqtt = await link.route(hub.mqttPort);
    const registry = await link.route(proxy.port);
    const device = new DownloadDevice(hub, `e2e-dl-rate-${suffix}`, ['--downlink-rate', '256k'], `mqtt://${mqtt.address}`);
    cleanup.add('device', async () => {
      await device.agent.proc.stop();
      await device.remove();
      removeDir(device.agent.dataDir);
    });
    await device.registered();

    // Something on the device to talk to: an app whose image comes from the registry off the link.
    const companion = `${device.app}-shell`;
    await device.apps.apply(companion, { image: web.v1 });
    await waitFor('the companion app running', async () => (await device.apps.state(companion))?.phase === 'running', {
      timeoutMs: 60_000,
    });
    const roundTrip = async (): Promise<number> => {
      const started = performance.now();
      const result = await runCli(['--hub', hub.url, 'exec', device.deviceId, companion, '--', 'echo', 'pong']);
      expect(result.stdout.trim(), result.stderr).toBe('pong');
      return performance.now() - started;
    };
    await roundTrip(); // the first one starts what later ones reuse
    const before = [await roundTrip(), await roundTrip(), await roundTrip()];

    // The agent's content store (docs/image-downloads.md): the data layer's partial file grows as the paced download stores it.
    const layer = image.layers[1]!;
    const partial = join(device.agent.dataDir, 'images', 'partial', layer.digest.replace(':', '-'));
    let seen = 0;
    /** Bytes of the layer stored; all of them once its partial file has come and gone (completed). */
    const stored = () => {
      if (existsSync(partial)) seen = Math.max(seen, statSync(partial).size);
      else if (seen > 0) seen = layer.size;
      return seen;
    };
    const samples: { at: number; stored: number; link: number }[] = [];
    const sampler = setInterval(() => samples.push({ at: performance.now(), stored: stored(), link: registry.stats.bytesDown }), 250);
    cleanup.add('sampler', () => clearInterval(sampler));
    await device.deploy(referenceVia(image, registry.address));

    // Once 1 MiB is stored, the buffers between the link and the pacer (the agent's socket and its reader) are
    // full, and the link carries what the pacer lets through: the steady state, until its last 512 KiB.
    await waitFor('the download under way', () => stored() >= 1024 * KiB, { timeoutMs: 60_000 });
    link.resetPeaks();
    const during: number[] = [];
    const progress = new Set<number>();
    while (stored() < layer.size - 512 * KiB) {
      during.push(await roundTrip());
      const reported = (await describeDevice(hub, device.deviceId)).images?.find((entry) => entry.state === 'downloading');
      if (reported) progress.add(reported.bytes);
    }
    const waited = mqtt.stats;
    await device.running(image);
    clearInterval(sampler);

    // The pace over the middle of the layer: from 512 KiB stored to 512 KiB before its end.
    const inMiddle = samples.filter((s) => s.stored >= 512 * KiB && s.stored <= layer.size - 512 * KiB);
    const first = inMiddle[0]!;
    const last = inMiddle[inMiddle.length - 1]!;
    const seconds = (last.at - first.at) / 1000;
    const rate = (last.stored - first.stored) / seconds;
    const report = {
      rate: Math.round(rate),
      linkRate: Math.round((last.link - first.link) / seconds),
      before: before.map(Math.round),
      during: during.map(Math.round),
      maxWaitMs: Math.round(waited.maxWaitMs),
      meanWaitMs: Math.round(waited.meanWaitMs),
    };
    console.log(`[image-download-rate] ${JSON.stringify(report)}`);
    expect(last.at - first.at, JSON.stringify(report)).toBeGreaterThan(8_000);
    expect(rate / CAP, JSON.stringify(report)).toBeGreaterThan(0.9);
    expect(rate / CAP, JSON.stringify(report)).toBeLessThan(1.1);
    expect((await describeDevice(hub, device.deviceId)).downloads?.rateLimit).toBe(CAP);

    // State reports kept coming: the hub saw the progress grow more than once.
    expect(progress.size, JSON.stringify(report)).toBeGreaterThanOrEqual(2);
    // The hub's messages to the device did not wait behind the download.
    expect(waited.meanWaitMs, JSON.stringify(report)).toBeLessThanOrEqual(MAX_MEAN_QUEUE_WAIT_MS);
    expect(during.length).toBeGreaterThanOrEqual(3);
    // The quicker quarter of the execs during the download take as long as those before; on a flooded link none does.
    expect(quantile(during, 0.25), JSON.stringify(report)).toBeLessThanOrEqual(quantile(before, 0.5) + MAX_ADDED_ROUND_TRIP_MS);
  });
});

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length * q)]!;
}
