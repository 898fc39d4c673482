/**
 * How image downloads read for people (docs/image-downloads.md): the Images and Downloads
 * sections of `describe device`, and the IMAGES column and images line of `rollout status`.
 * Pure functions of the hub's views and `now`, so each is a unit test.
 *
 * Text that came from devices (image references, messages) goes through the table and field
 * helpers, which pass it through `cell()`: a device must not be able to move the cursor.
 */
import type { DeviceView, RolloutDeviceImages, RolloutDownloads } from '../shared/api/results.js';
import type { DownloadTotals, ImageDownload } from '../shared/schemas/images.js';
import { formatBytes } from '../shared/schemas/units.js';
import { formatFields, formatTable, indent, roundedDuration } from './output.js';

const BAR_WIDTH = 10;

/** `[###-------]`: `done` of `total`, rounded down so a bar is full only when done. */
export function bar(done: number, total: number): string {
  const filled = total <= 0 ? BAR_WIDTH : Math.min(BAR_WIDTH, Math.floor((BAR_WIDTH * done) / total));
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
}

/** `25%`, rounded down: 100% only when done. */
function percent(done: number, total: number): string {
  return `${total <= 0 ? 100 : Math.floor((100 * Math.min(done, total)) / total)}%`;
}

/** `250.0 KiB/s`. */
export function rateText(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** `2026-12-07T00:00:00Z`: UTC to the second; what does not parse is shown as it came. */
function isoText(at: string): string {
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? at : new Date(ms).toISOString().replace(/\.[0-9]+Z$/, 'Z');
}

/** `2026-12-07T00:00:00Z (in 5h)`: a time to come on the device's clock, and how far off it is from here. */
export function whenText(at: string, now: number): string {
  const ms = Date.parse(at);
  if (Number.isNaN(ms)) return at;
  return ms > now ? `${isoText(at)} (in ${roundedDuration(ms - now)})` : `${isoText(at)} (due)`;
}

/** `[###-------] 12.0 MiB of 48.0 MiB (25%)`; the bytes alone while the size is unknown; `-` with nothing to show. */
export function imageProgress(image: Pick<ImageDownload, 'bytes' | 'total'>): string {
  const { bytes, total } = image;
  if (total === undefined) return bytes > 0 ? formatBytes(bytes) : '-';
  if (total === 0) return '-';
  return `${bar(bytes, total)} ${formatBytes(bytes)} of ${formatBytes(total)} (${percent(bytes, total)})`;
}

/** Who wants the image: `web@3`, `prefetch web@4`, `job backup`. */
export function imageOwner(image: Pick<ImageDownload, 'app' | 'revision' | 'job' | 'prefetch'>): string {
  if (image.app !== undefined) {
    const app = image.revision !== undefined ? `${image.app}@${image.revision}` : image.app;
    return image.prefetch ? `prefetch ${app}` : app;
  }
  if (image.job !== undefined) return `job ${image.job}`;
  return image.prefetch ? 'prefetch' : '-';
}

/**
 * The device's message, and with a wait how far off its end is: `… downloads go on at
 * 2026-12-07T00:00:00Z (in 5h)` where the message names the time already, else `…; resumes at
 * 2026-12-07T00:00:00Z (in 5h)`.
 */
export function imageMessage(image: Pick<ImageDownload, 'message' | 'resumesAt'>, now: number): string {
  const message = image.message ?? '';
  if (image.resumesAt === undefined) return message;
  const when = whenText(image.resumesAt, now);
  const at = isoText(image.resumesAt);
  if (message.includes(at)) return message.replace(at, when);
  return message === '' ? `resumes at ${when}` : `${message}; resumes at ${when}`;
}

/** The `describe device` Images section: one row per image the device reported; none reported, no section. */
export function imagesSection(images: readonly ImageDownload[] | undefined, now: number = Date.now()): string {
  if (images === undefined || images.length === 0) return '';
  return `Images:\n${indent(
    formatTable(
      ['IMAGE', 'FOR', 'STATE', 'PROGRESS', 'RATE', 'REUSED', 'RESENT', 'MESSAGE'],
      images.map((image) => [
        image.image,
        imageOwner(image),
        image.via === 'engine' ? `${image.state} (engine pull)` : image.state,
        imageProgress(image),
        image.state === 'downloading' && image.rate !== undefined ? rateText(image.rate) : '-',
        image.reusedBytes !== undefined ? formatBytes(image.reusedBytes) : '-',
        image.resentBytes !== undefined ? formatBytes(image.resentBytes) : '-',
        imageMessage(image, now),
      ]),
    ),
  )}`;
}

/** `120.0 MiB of 500.0 MiB used on 2026-12-06, resets at … (in 5h)`; `none` without a budget. */
export function budgetText(budget: DownloadTotals['budget'], now: number): string {
  if (budget === undefined) return 'none';
  const spent = budget.used >= budget.limit ? ' (spent: downloads wait)' : '';
  return `${formatBytes(budget.used)} of ${formatBytes(budget.limit)} used on ${budget.day}${spent}, resets at ${whenText(budget.resetsAt, now)}`;
}

/** The `describe device` Downloads section: the device's totals, its rate limit and daily budget; absent for an agent that reports none. */
export function downloadsSection(downloads: DeviceView['downloads'], now: number = Date.now()): string {
  if (downloads === undefined) return '';
  const images = `${downloads.images} ${downloads.images === 1 ? 'image' : 'images'} completed`;
  return `Downloads:\n${formatFields(
    [
      ['Received', `${formatBytes(downloads.bytes)} since ${isoText(downloads.since)} (${images})`],
      ['Reused', `${formatBytes(downloads.reusedBytes)} (layers the engine already had)`],
      ['Resent', `${formatBytes(downloads.resentBytes)} (received more than once)`],
      ['Rate Limit', downloads.rateLimit !== undefined ? rateText(downloads.rateLimit) : 'none'],
      ['Budget', budgetText(downloads.budget, now)],
    ],
    '  ',
  )}`;
}

/**
 * A device's IMAGES cell in `rollout status`: `present`, a small bar and rate while the
 * revision's images download, a wait or a failure, `0/2 present` when nothing is reported of
 * them, `-` for a device that has not reported.
 */
export function rolloutImagesCell(images: RolloutDeviceImages | undefined, now: number = Date.now()): string {
  if (images === undefined) return '-';
  if (images.present === images.count) return 'present';
  const held = `${images.present}/${images.count} present`;
  switch (images.state) {
    case undefined:
      return held;
    case 'downloading': {
      const progress =
        images.total !== undefined && images.total > 0
          ? `${bar(images.bytes ?? 0, images.total)} ${percent(images.bytes ?? 0, images.total)}`
          : formatBytes(images.bytes ?? 0);
      return images.rate !== undefined ? `${progress} at ${rateText(images.rate)}` : progress;
    }
    case 'waiting':
      return images.resumesAt !== undefined ? `waiting until ${whenText(images.resumesAt, now)}` : 'waiting';
    case 'failed':
      return images.message !== undefined ? `failed: ${images.message}` : 'failed';
    default:
      return `${images.state} (${held})`;
  }
}

/** `images: 3/5 devices hold them; downloaded 1.2 GiB, reused 300.0 MiB by layer sharing, resent 0 B`. */
export function rolloutDownloadsLine(downloads: RolloutDownloads, devices: number): string {
  return (
    `images: ${downloads.ready}/${devices} devices hold them; downloaded ${formatBytes(downloads.bytes)}, ` +
    `reused ${formatBytes(downloads.reusedBytes)} by layer sharing, resent ${formatBytes(downloads.resentBytes)}\n`
  );
}
