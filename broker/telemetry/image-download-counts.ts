/**
 * The fleet's image downloads for Prometheus, from the devices' stored state reports (their
 * `downloads` totals and `images` entries): sums over the fleet and devices per download state,
 * never a series per device or per image, so the label set stays a handful whatever the fleet.
 * Pure: the hub reads the rows, this adds them up at scrape time.
 */
import { type DeviceState, IMAGE_DOWNLOAD_STATES, type ImageDownloadState } from '../../shared/index.js';

/** The states a device's images can be in on their way (`present` is done, not on the way). */
export const PENDING_IMAGE_STATES = IMAGE_DOWNLOAD_STATES.filter(
  (state): state is Exclude<ImageDownloadState, 'present'> => state !== 'present',
);
export type PendingImageState = (typeof PENDING_IMAGE_STATES)[number];

export interface ImageDownloadCounts {
  /** Devices whose agent downloads images itself (it reports `downloads`). */
  agents: number;
  /** Sums of the devices' `downloads` totals. */
  bytes: number;
  reusedBytes: number;
  resentBytes: number;
  images: number;
  /** Devices with at least one image in each state, every state present (0 where none). */
  devices: Record<PendingImageState, number>;
}

/** Adds up the reports; `null` is a device that never reported. */
export function imageDownloadCounts(states: Iterable<DeviceState | null>): ImageDownloadCounts {
  const counts: ImageDownloadCounts = {
    agents: 0,
    bytes: 0,
    reusedBytes: 0,
    resentBytes: 0,
    images: 0,
    devices: Object.fromEntries(PENDING_IMAGE_STATES.map((state) => [state, 0])) as Record<PendingImageState, number>,
  };
  for (const state of states) {
    if (!state) continue;
    const totals = state.downloads;
    if (totals) {
      counts.agents += 1;
      counts.bytes += totals.bytes;
      counts.reusedBytes += totals.reusedBytes;
      counts.resentBytes += totals.resentBytes;
      counts.images += totals.images;
    }
    const seen = new Set<ImageDownloadState>();
    for (const image of state.images ?? []) seen.add(image.state);
    for (const pending of PENDING_IMAGE_STATES) if (seen.has(pending)) counts.devices[pending] += 1;
  }
  return counts;
}
