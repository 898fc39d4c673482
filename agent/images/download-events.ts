/**
 * The device's events about image downloads, as operators read them on its
 * timeline: started, resumed (with the offset), completed (what it cost and
 * saved), failed, waiting (the daily budget), and fallback (the engine pulls
 * instead, and why). Pure wording, but for ResumedEvents, which keeps a link
 * that breaks every few seconds from writing a resume event each time.
 */
import { formatBytes } from '../../shared/index.js';
import type { NewEvent } from '../wiring/uplink.js';
import type { PullOwner } from './download-report.js';

/** At most one `image-download-resumed` event per blob this often; the ones between are counted into the next. */
export const RESUMED_EVENT_INTERVAL_MS = 60_000;

export type DownloadEvent = Omit<NewEvent, 'ts'>;

/** `for app web revision 4 (ahead of its update)`, `for job backup`. */
function forWhom(owner: PullOwner): string {
  if (owner.app !== undefined) {
    const revision = owner.revision !== undefined ? ` revision ${owner.revision}` : '';
    return ` for app ${owner.app}${revision}${owner.prefetch ? ' (ahead of its update)' : ''}`;
  }
  if (owner.job !== undefined) return ` for job ${owner.job}`;
  return '';
}

function about(owner: PullOwner): Pick<DownloadEvent, 'app'> {
  return owner.app !== undefined ? { app: owner.app } : {};
}

export interface PlannedDownload {
  total: number;
  reusedBytes: number;
  blobs: number;
  storedBytes: number;
}

export function startedEvent(image: string, owner: PullOwner, plan: PlannedDownload): DownloadEvent {
  const reused = plan.reusedBytes > 0 ? `; ${formatBytes(plan.reusedBytes)} of layers already present` : '';
  const stored = plan.storedBytes > 0 ? `; ${formatBytes(plan.storedBytes)} stored earlier, continued from there` : '';
  const blobs = `${plan.blobs} blob${plan.blobs === 1 ? '' : 's'}`;
  return {
    type: 'image-download-started',
    ...about(owner),
    message: `downloading ${image}${forWhom(owner)}: ${formatBytes(plan.total)} in ${blobs}${reused}${stored}`,
  };
}

export function engineStartedEvent(image: string, owner: PullOwner, why: string): DownloadEvent {
  return { type: 'image-download-started', ...about(owner), message: `the engine pulls ${image}${forWhom(owner)}: ${why}` };
}

export interface CompletedDownload {
  via: 'agent' | 'engine';
  /** Bytes received, resent ones included. */
  bytes: number;
  reusedBytes: number;
  resentBytes: number;
  ms: number;
}

export function completedEvent(image: string, owner: PullOwner, done: CompletedDownload): DownloadEvent {
  const seconds = Math.max(done.ms / 1000, 0.001);
  const took = seconds < 10 ? `${seconds.toFixed(1)} s` : `${Math.round(seconds)} s`;
  if (done.via === 'engine') {
    return { type: 'image-download-completed', ...about(owner), message: `the engine pulled ${image}${forWhom(owner)} in ${took}` };
  }
  const average = formatBytes(Math.round(done.bytes / seconds));
  return {
    type: 'image-download-completed',
    ...about(owner),
    message:
      `${image}${forWhom(owner)} is in the engine: ${formatBytes(done.bytes)} downloaded in ${took} (${average}/s on average), ` +
      `${formatBytes(done.reusedBytes)} reused from layers present, ${formatBytes(done.resentBytes)} resent`,
  };
}

export function failedEvent(image: string, owner: PullOwner, why: string): DownloadEvent {
  return { type: 'image-download-failed', ...about(owner), message: `downloading ${image}${forWhom(owner)} failed: ${why}` };
}

export function waitingEvent(image: string, owner: PullOwner, limit: number, resumesAt: Date): DownloadEvent {
  return {
    type: 'image-download-waiting',
    ...about(owner),
    message: `${image}${forWhom(owner)} waits: today's download budget of ${formatBytes(limit)} is spent; downloads go on at ${iso(resumesAt)}`,
  };
}

export function fallbackEvent(image: string, owner: PullOwner, why: string): DownloadEvent {
  return {
    type: 'image-download-fallback',
    ...about(owner),
    message: `the engine pulls ${image}${forWhom(owner)} instead of the agent: ${why}`,
  };
}

/** `2026-12-07T00:00:00Z`: seconds are enough for people. */
export function iso(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

interface BlobResumes {
  /** Resumes since the blob's last event. */
  unsaid: number;
  total: number;
  lastEventAt: number;
}

/** One `image-download-resumed` event per blob per interval; the resumes between are counted into it. */
export class ResumedEvents {
  private readonly blobs = new Map<string, BlobResumes>();

  constructor(
    private readonly now: () => number,
    private readonly intervalMs = RESUMED_EVENT_INTERVAL_MS,
  ) {}

  /** The event for this resume, or undefined when one was said for this blob less than an interval ago. */
  resumed(image: string, owner: PullOwner, digest: string, offset: number): DownloadEvent | undefined {
    const now = this.now();
    const blob = this.blobs.get(digest) ?? { unsaid: 0, total: 0, lastEventAt: Number.NEGATIVE_INFINITY };
    this.blobs.set(digest, blob);
    blob.total += 1;
    blob.unsaid += 1;
    if (now - blob.lastEventAt < this.intervalMs) return undefined;
    const times = blob.total > 1 ? ` (resumed ${blob.total} times${blob.unsaid > 1 ? `, ${blob.unsaid} since the last event` : ''})` : '';
    blob.unsaid = 0;
    blob.lastEventAt = now;
    return {
      type: 'image-download-resumed',
      ...about(owner),
      message: `${image}${forWhom(owner)}: blob ${digest} resumed at byte ${offset} (${formatBytes(offset)} stored)${times}`,
    };
  }

  /** The image's blobs are done with: their counts go. */
  forget(digests: Iterable<string>): void {
    for (const digest of digests) this.blobs.delete(digest);
  }
}
