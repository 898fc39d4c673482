/**
 * Image downloads as operators read them: the Images and Downloads sections of `describe
 * device`, the IMAGES column and images line of `rollout status` (cli/image-text.ts), and the
 * hub's per-device hold and rollout-wide sums those are printed from
 * (broker/dispatcher/rollout-images.ts), from given views and reports.
 */
import { describe, expect, it } from 'vitest';
import { withRolloutImages } from '../../broker/dispatcher/rollout-images.js';
import type { Device } from '../../cli/client.js';
import { describeDevice } from '../../cli/commands/describe.js';
import { rolloutText } from '../../cli/commands/rollout.js';
import { downloadsSection, imageMessage, imageProgress, imagesSection, rolloutImagesCell } from '../../cli/image-text.js';
import type { DeviceState, DownloadTotals, ImageDownload, RolloutStatus } from '../../shared/index.js';
import { deviceState } from '../support/fixtures.js';

const NOW = Date.parse('2026-12-06T19:00:00.000Z');
const MiB = 1024 * 1024;
const SINCE = '2026-12-06T18:59:00.000Z';

const downloading: ImageDownload = {
  image: 'registry.local/web:2.0',
  app: 'web',
  revision: 2,
  prefetch: true,
  state: 'downloading',
  via: 'agent',
  bytes: 12 * MiB,
  total: 48 * MiB,
  reusedBytes: 3 * MiB,
  resentBytes: 0,
  rate: 256 * 1024,
  since: SINCE,
};

const waiting: ImageDownload = {
  image: 'registry.local/backup:5',
  job: 'backup',
  state: 'waiting',
  via: 'agent',
  bytes: 5 * MiB,
  total: 10 * MiB,
  message: 'daily download budget spent (500.0 MiB)',
  resumesAt: '2026-12-07T00:00:00.000Z',
  since: SINCE,
};

const fellBack: ImageDownload = {
  image: 'registry.local/legacy:1',
  app: 'legacy',
  revision: 7,
  state: 'present',
  via: 'engine',
  bytes: 0,
  message: 'the registry ignored Range requests: pulled by the engine instead',
  since: SINCE,
};

const totals: DownloadTotals = {
  bytes: 1288490189,
  reusedBytes: 300 * MiB,
  resentBytes: 0,
  images: 4,
  rateLimit: 256 * 1024,
  budget: { limit: 500 * MiB, used: 120 * MiB, day: '2026-12-06', resetsAt: '2026-12-07T00:00:00.000Z' },
  since: '2026-12-01T10:00:00.000Z',
};

const device: Device = {
  id: 'pi-7',
  online: true,
  lastSeen: SINCE,
  labels: {},
  operatorLabels: {},
  reportedLabels: {},
  desiredRevision: 5,
  observedRevision: 5,
  host: null,
  apps: [],
};

describe('describe device: images and downloads', () => {
  it('has one row per image: who wants it, state, bar with bytes and percent, rate, reused, resent, message', () => {
    const text = imagesSection([downloading, waiting, fellBack], NOW);
    const lines = text.split('\n');
    expect(lines[0]).toBe('Images:');
    expect(lines[1]).toMatch(/^ {2}IMAGE +FOR +STATE +PROGRESS +RATE +REUSED +RESENT +MESSAGE$/);
    expect(lines[2]).toMatch(
      /^ {2}registry\.local\/web:2\.0 +prefetch web@2 +downloading +\[##--------\] 12\.0 MiB of 48\.0 MiB \(25%\) +256\.0 KiB\/s +3\.0 MiB +0 B$/,
    );
    // A budget wait says when it goes on, and how far off that is.
    expect(lines[3]).toMatch(
      /^ {2}registry\.local\/backup:5 +job backup +waiting +\[#####-----\] 5\.0 MiB of 10\.0 MiB \(50%\) +- +- +- +daily download budget spent \(500\.0 MiB\); resumes at 2026-12-07T00:00:00Z \(in 5h\)$/,
    );
    // The engine's pull, and why the agent handed it over.
    expect(lines[4]).toMatch(
      /^ {2}registry\.local\/legacy:1 +legacy@7 +present \(engine pull\) +- +- +- +- +the registry ignored Range requests: pulled by the engine instead$/,
    );
  });

  it('shows what is known of the progress: the bytes alone before the size is known, a full bar once done', () => {
    expect(imageProgress({ bytes: 0 })).toBe('-');
    expect(imageProgress({ bytes: 3 * MiB })).toBe('3.0 MiB');
    expect(imageProgress({ bytes: 48 * MiB - 1, total: 48 * MiB })).toBe('[#########-] 48.0 MiB of 48.0 MiB (99%)');
    expect(imageProgress({ bytes: 48 * MiB, total: 48 * MiB })).toBe('[##########] 48.0 MiB of 48.0 MiB (100%)');
    // Every layer was there already: nothing to download.
    expect(imageProgress({ bytes: 0, total: 0 })).toBe('-');
  });

  it('has the totals, the rate limit and the budget in a Downloads section', () => {
    expect(downloadsSection(totals, NOW)).toBe(
      [
        'Downloads:',
        '  Received:    1.2 GiB since 2026-12-01T10:00:00Z (4 images completed)',
        '  Reused:      300.0 MiB (layers the engine already had)',
        '  Resent:      0 B (received more than once)',
        '  Rate Limit:  256.0 KiB/s',
        '  Budget:      120.0 MiB of 500.0 MiB used on 2026-12-06, resets at 2026-12-07T00:00:00Z (in 5h)',
        '',
      ].join('\n'),
    );
    const { rateLimit: _, budget: __, ...unlimited } = totals;
    const spent = { ...totals, images: 1, budget: { ...totals.budget!, used: 500 * MiB } };
    expect(downloadsSection(unlimited, NOW)).toContain('  Rate Limit:  none\n  Budget:      none\n');
    expect(downloadsSection(spent, NOW)).toContain('(1 image completed)');
    expect(downloadsSection(spent, NOW)).toContain('500.0 MiB of 500.0 MiB used on 2026-12-06 (spent: downloads wait), resets at');
  });

  it('puts both sections in describe device, and neither for an agent that reports none', () => {
    const text = describeDevice({ ...device, images: [downloading], downloads: totals }, NOW);
    expect(text).toMatch(/\nImages:\n {2}IMAGE .*\n {2}registry\.local\/web:2\.0 .*\nDownloads:\n {2}Received: /);
    const plain = describeDevice(device, NOW);
    expect(plain).not.toContain('Images');
    expect(plain).not.toContain('Downloads');
  });

  it("says how far off a wait's end is, once, whether the device's message names the time or not", () => {
    const budget = {
      message: "today's download budget is spent; downloads go on at 2026-12-07T00:00:00Z",
      resumesAt: '2026-12-07T00:00:00.000Z',
    };
    expect(imageMessage(budget, NOW)).toBe("today's download budget is spent; downloads go on at 2026-12-07T00:00:00Z (in 5h)");
    expect(imageMessage({ resumesAt: '2026-12-06T19:10:00.000Z' }, NOW)).toBe('resumes at 2026-12-06T19:10:00Z (in 10m)');
    expect(imageMessage({ message: 'unauthorized' }, NOW)).toBe('unauthorized');
  });

  it('keeps what a device sends on one line, without terminal escapes', () => {
    const text = imagesSection([{ ...waiting, message: 'line one\nline two\u001b[2J' }], NOW);
    expect(text).toContain('line one line two?[2J');
    expect(text.split('\n')).toHaveLength(4);
  });
});

/** A rollout of web revision 2 over three devices, before its images are looked at. */
function rollout(): RolloutStatus {
  const at = '2026-12-06T18:00:00.000Z';
  return {
    app: 'web',
    revision: 2,
    previousRevision: 1,
    phase: 'progressing',
    canary: 1,
    devices: [
      { id: 'dev-1', revision: 2, state: 'healthy', since: at, canary: true },
      { id: 'dev-2', revision: 1, state: 'pending', since: at, canary: false },
      { id: 'dev-3', revision: 1, state: 'pending', since: at, canary: false },
      { id: 'dev-4', revision: 1, state: 'pending', since: at, canary: false },
    ],
    counts: { total: 4, pending: 3, updating: 0, healthy: 1, failed: 0, reverted: 0 },
    startedAt: at,
    updatedAt: at,
  };
}

const IMAGES = ['registry.local/web:2.0', 'registry.local/proxy:1.0'];

function report(id: string, overrides: Partial<DeviceState>): DeviceState {
  return deviceState(id, overrides);
}

const running = (images: string[]): DeviceState['apps'] => [
  {
    name: 'web',
    revision: 2,
    phase: 'running',
    containers: images.map((image, i) => ({ name: `c${i}`, id: `id${i}`, image, state: 'running', restartCount: 0 })),
  },
];

describe('rollout status: images', () => {
  const states = new Map<string, DeviceState>([
    // Runs both images: it holds them, and the image it downloaded counts in the sums.
    [
      'dev-1',
      report('dev-1', {
        apps: running(IMAGES),
        images: [
          { ...downloading, prefetch: false, state: 'present', bytes: 45 * MiB, total: 45 * MiB, reusedBytes: 3 * MiB, resentBytes: 1024 },
        ],
      }),
    ],
    // Runs the proxy (revision 1 had it too) and prefetches web:2.0; an unrelated image is left out of the sums.
    [
      'dev-2',
      report('dev-2', {
        apps: [{ name: 'web', revision: 1, phase: 'running', containers: running(['registry.local/web:1.0', IMAGES[1]!])[0]!.containers }],
        images: [downloading, { ...waiting, bytes: 99 * MiB }],
      }),
    ],
    // Waits for its budget.
    ['dev-3', report('dev-3', { images: [{ ...waiting, image: IMAGES[0]!, app: 'web', revision: 2, prefetch: true }] })],
  ]);
  const status = withRolloutImages(rollout(), IMAGES, (id) => states.get(id));

  it("sums what the rollout's devices downloaded, reused and resent of the revision's images", () => {
    expect(status.downloads).toEqual({ bytes: 45 * MiB + 12 * MiB + 5 * MiB, reusedBytes: 6 * MiB, resentBytes: 1024, ready: 1 });
  });

  it('says per device whether it holds the images, and how the rest download', () => {
    expect(status.devices.map((d) => [d.id, d.images])).toEqual([
      ['dev-1', { present: 2, count: 2 }],
      ['dev-2', { present: 1, count: 2, state: 'downloading', bytes: 12 * MiB, total: 48 * MiB, rate: 256 * 1024 }],
      [
        'dev-3',
        {
          present: 0,
          count: 2,
          state: 'waiting',
          bytes: 5 * MiB,
          message: 'daily download budget spent (500.0 MiB)',
          resumesAt: '2026-12-07T00:00:00.000Z',
        },
      ],
      // Never reported: nothing said of it.
      ['dev-4', undefined],
    ]);
  });

  it('prints the sums, and per device a bar and rate, a wait, or present', () => {
    const text = rolloutText(status, NOW);
    expect(text).toContain('images: 1/4 devices hold them; downloaded 62.0 MiB, reused 6.0 MiB by layer sharing, resent 1.0 KiB\n');
    expect(text).toMatch(/\nDEVICE +STAGE +REVISION +STATE +SINCE +IMAGES +MESSAGE\n/);
    expect(text).toMatch(/\ndev-1 +canary +2 +healthy +1h +present\n/);
    expect(text).toMatch(/\ndev-2 +fleet +1 +pending +1h +\[##--------\] 25% at 256\.0 KiB\/s\n/);
    expect(text).toMatch(/\ndev-3 +fleet +1 +pending +1h +waiting until 2026-12-07T00:00:00Z \(in 5h\)\n/);
    expect(text).toMatch(/\ndev-4 +fleet +1 +pending +1h +-\n/);
  });

  it('reads a failure, a queue and an unreported hold for what they are', () => {
    expect(rolloutImagesCell({ present: 0, count: 1, state: 'failed', bytes: 0, message: 'unauthorized' }, NOW)).toBe(
      'failed: unauthorized',
    );
    expect(rolloutImagesCell({ present: 1, count: 2, state: 'queued', bytes: 0 }, NOW)).toBe('queued (1/2 present)');
    expect(rolloutImagesCell({ present: 0, count: 1 }, NOW)).toBe('0/1 present');
    expect(rolloutImagesCell({ present: 0, count: 1, state: 'downloading', bytes: 3 * MiB }, NOW)).toBe('3.0 MiB');
  });

  it('leaves an agent target rollout, which has no images, as it was', () => {
    const agent = { ...rollout(), app: 'agent/site-lab' };
    expect(withRolloutImages(agent, [], (id) => states.get(id))).toBe(agent);
    expect(rolloutText(agent, NOW)).toMatch(/\nDEVICE +STAGE +REVISION +STATE +SINCE +MESSAGE\n/);
    expect(rolloutText(agent, NOW)).not.toContain('images:');
  });
});
