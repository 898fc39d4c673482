/**
 * `--downlink-rate` measured: a 3 MB layer downloaded through the token
 * bucket at 256 KiB/s lands within 10 % of the cap.
 *
 * Why this cannot flake on a loaded machine: above the cap is impossible
 * (the bucket grants at most its burst plus the rate times the time since
 * it was made, whatever the scheduler does); below it would need the
 * process starved for over a second at a time, since a timer that fires
 * late is made up for (rate-limit.ts), and the registry on loopback sends
 * far faster than the cap, so the download always waits on the bucket.
 */
import { performance } from 'node:perf_hooks';
import { expect, it } from 'vitest';
import { BlobStore } from '../../agent/images/blob-store.js';
import { downloadBlobs } from '../../agent/images/download-blobs.js';
import { TokenBucket } from '../../agent/images/rate-limit.js';
import { RegistrySession } from '../../agent/images/registry-session.js';
import { pushImage, randomLayer } from '../support/registry-push.js';
import { scratchDir } from '../support/scratch.js';

const KiB = 1024;

it('paces a 3 MB download to 256 KiB/s within 10 %', async () => {
  const pushed = await pushImage({
    repository: 'flotilla-test/blobs-rate',
    tag: `t-${Date.now().toString(36)}`,
    layers: [randomLayer(3_000 * KiB)],
  });
  const layer = pushed.layers[0]!;
  const cap = 256 * KiB;
  const bucket = new TokenBucket(cap);
  const store = await BlobStore.open(scratchDir('flotilla-blobs-rate-'));
  let received = 0;

  const started = performance.now();
  await downloadBlobs(new RegistrySession(pushed.image, undefined), store, [layer], {
    signal: AbortSignal.timeout(60_000),
    pace: bucket,
    onEvent: (event) => {
      if (event.type === 'received') received += event.bytes;
    },
  });
  const seconds = (performance.now() - started) / 1000;

  const rate = received / seconds;
  expect(received).toBe(layer.size);
  expect(bucket.granted).toBe(layer.size);
  console.log(
    `downlink cap ${cap} B/s: ${layer.size} bytes in ${seconds.toFixed(2)} s = ${Math.round(rate)} B/s (${((rate / cap) * 100).toFixed(1)} % of the cap)`,
  );
  expect(rate).toBeLessThanOrEqual(1.1 * cap);
  expect(rate).toBeGreaterThanOrEqual(0.9 * cap);
}, 60_000);
