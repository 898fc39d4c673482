/**
 * A rollout's images as its devices report them, pure: for each device whether it holds the
 * images of the revision being rolled out and how their download goes, and for the rollout what
 * its devices downloaded of them and what layer reuse and resumes saved (`rollout status`).
 *
 * Rules:
 * - An image is held when the device reports it `present`, or runs a container of it (an
 *   image the engine already had is never downloaded, so never reported).
 * - A device's entry for an image is found by the image reference alone: whoever wanted it
 *   first (this app ahead of its turn, this revision, a job), the image on the device is one.
 * - The sums count each device's entry for each of the revision's images once, whatever its
 *   state: what a finished download cost stays counted while the device keeps reporting it.
 */
import type {
  DeviceState,
  ImageDownload,
  ImageDownloadState,
  RolloutDeviceImages,
  RolloutDownloads,
  RolloutStatus,
} from '../../shared/index.js';

/** Which state of the images not held yet a device's row shows: the one most worth an operator's look first. */
const SHOWN_FIRST: readonly ImageDownloadState[] = ['failed', 'waiting', 'downloading', 'loading', 'queued'];

/** The revision's distinct images, in spec order. */
export function revisionImages(containers: ReadonlyArray<{ image: string }>): string[] {
  return [...new Set(containers.map((container) => container.image))];
}

/**
 * `status` with each reported device's `images` and the rollout's `downloads`, for the revision's
 * `images`; `stateOf` gives a device's last state report (undefined before its first).
 */
export function withRolloutImages(
  status: RolloutStatus,
  images: readonly string[],
  stateOf: (deviceId: string) => DeviceState | undefined,
): RolloutStatus {
  if (images.length === 0) return status;
  const downloads: RolloutDownloads = { bytes: 0, reusedBytes: 0, resentBytes: 0, ready: 0 };
  const devices = status.devices.map((device) => {
    const state = stateOf(device.id);
    if (!state) return device;
    const entries = entriesFor(state, images);
    for (const entry of entries.values()) {
      downloads.bytes += entry.bytes;
      downloads.reusedBytes += entry.reusedBytes ?? 0;
      downloads.resentBytes += entry.resentBytes ?? 0;
    }
    const held = deviceImages(state, images, entries);
    if (held.present === held.count) downloads.ready += 1;
    return { ...device, images: held };
  });
  return { ...status, devices, downloads };
}

/** The device's report entry of each of `images` it reports (the first, should it report one twice). */
function entriesFor(state: DeviceState, images: readonly string[]): Map<string, ImageDownload> {
  const wanted = new Set(images);
  const entries = new Map<string, ImageDownload>();
  for (const entry of state.images ?? []) if (wanted.has(entry.image) && !entries.has(entry.image)) entries.set(entry.image, entry);
  return entries;
}

/** One device's hold of `images`, and how the download of those it lacks goes. */
export function deviceImages(
  state: DeviceState,
  images: readonly string[],
  entries: ReadonlyMap<string, ImageDownload> = entriesFor(state, images),
): RolloutDeviceImages {
  const running = new Set(state.apps.flatMap((app) => app.containers.map((container) => container.image)));
  const missing: ImageDownload[] = [];
  let present = 0;
  let unreported = 0;
  for (const image of images) {
    const entry = entries.get(image);
    if (entry?.state === 'present' || running.has(image)) present += 1;
    else if (entry) missing.push(entry);
    else unreported += 1;
  }
  const held: RolloutDeviceImages = { present, count: images.length };
  const shown = SHOWN_FIRST.map((state) => missing.find((entry) => entry.state === state)).find((entry) => entry !== undefined);
  if (!shown) return held;
  held.state = shown.state;
  held.bytes = missing.reduce((sum, entry) => sum + entry.bytes, 0);
  if (unreported === 0 && missing.every((entry) => entry.total !== undefined))
    held.total = missing.reduce((sum, entry) => sum + (entry.total ?? 0), 0);
  const rate = missing.reduce((sum, entry) => sum + (entry.state === 'downloading' ? (entry.rate ?? 0) : 0), 0);
  if (rate > 0) held.rate = rate;
  if (shown.message !== undefined) held.message = shown.message;
  if (shown.resumesAt !== undefined) held.resumesAt = shown.resumesAt;
  return held;
}
