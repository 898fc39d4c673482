/**
 * What the state report says of each image the agent gets (ImageDownload):
 * one ImageProgress per image, which the puller moves through its states and
 * feeds the fetch's events; the list the report carries; and when it is worth
 * sending again.
 *
 * Invariants:
 * - `bytes` never exceeds `total`: bytes thrown away to be fetched again (a
 *   registry that ignored Range, a digest mismatch) leave `bytes` and are
 *   counted in `resentBytes`.
 * - `rate` is over the last RATE_WINDOW_MS (or since the download began, if
 *   later), and only while downloading.
 * - A change of state is reported at once; progress within a state at most
 *   every PROGRESS_REPORT_MS: a state report per chunk would take the thin
 *   link's share that control and telemetry keep.
 */
import {
  formatBytes,
  type ImageDownload,
  type ImageDownloadState,
  type ImageDownloadVia,
  MAX_REPORTED_IMAGES,
} from '../../shared/index.js';

export const RATE_WINDOW_MS = 5_000;
export const PROGRESS_REPORT_MS = 5_000;

/** Who wants an image: an app at a revision (ahead of time, for a prefetch), or a job. */
export interface PullOwner {
  app?: string;
  revision?: number;
  job?: string;
  /** Wanted ahead of time: a revision whose rollout stage or update window has not come. */
  prefetch?: boolean;
}

/** Bytes per second over the last few seconds, from one-second buckets. */
export class RateWindow {
  private readonly buckets = new Map<number, number>();
  private startedAt: number | undefined;

  constructor(private readonly now: () => number) {}

  add(bytes: number): void {
    const now = this.now();
    this.startedAt ??= now;
    const second = Math.floor(now / 1000);
    this.buckets.set(second, (this.buckets.get(second) ?? 0) + bytes);
    for (const key of this.buckets.keys()) if (key <= second - RATE_WINDOW_MS / 1000) this.buckets.delete(key);
  }

  /** Undefined before any byte. */
  rate(): number | undefined {
    if (this.startedAt === undefined) return undefined;
    const now = this.now();
    const from = Math.max(now - RATE_WINDOW_MS, this.startedAt);
    let bytes = 0;
    for (const [second, n] of this.buckets) if ((second + 1) * 1000 > from) bytes += n;
    const spanMs = Math.max(now - from, 1000);
    return Math.round((bytes * 1000) / spanMs);
  }

  reset(): void {
    this.buckets.clear();
    this.startedAt = undefined;
  }
}

/** One image's line in the report, as the puller moves it along. */
export class ImageProgress {
  state: ImageDownloadState = 'queued';
  via: ImageDownloadVia = 'agent';
  owner: PullOwner = {};
  bytes = 0;
  total: number | undefined;
  reusedBytes = 0;
  resentBytes = 0;
  message: string | undefined;
  resumesAt: Date | undefined;
  since: number;
  readonly rate: RateWindow;

  constructor(
    readonly image: string,
    private readonly now: () => number,
  ) {
    this.since = now();
    this.rate = new RateWindow(now);
  }

  /** Moves to `state` (a new `since` only when it changes); returns whether it changed. */
  enter(state: ImageDownloadState, fields: { message?: string; resumesAt?: Date } = {}): boolean {
    const changed = state !== this.state || fields.message !== this.message;
    if (state !== this.state) {
      this.since = this.now();
      if (state !== 'downloading') this.rate.reset();
    }
    this.state = state;
    this.message = fields.message;
    this.resumesAt = fields.resumesAt;
    return changed;
  }

  /** A new download of it begins (after a failure, or once present and removed): the counts start again. */
  restart(via: ImageDownloadVia): void {
    this.via = via;
    this.bytes = 0;
    this.total = undefined;
    this.reusedBytes = 0;
    this.resentBytes = 0;
    this.rate.reset();
  }

  received(bytes: number): void {
    this.bytes = this.total === undefined ? this.bytes + bytes : Math.min(this.total, this.bytes + bytes);
    this.rate.add(bytes);
  }

  resent(bytes: number): void {
    this.resentBytes += bytes;
    this.bytes = Math.max(0, this.bytes - bytes);
  }

  report(): ImageDownload {
    const { app, revision, job, prefetch } = this.owner;
    const rate = this.state === 'downloading' && this.via === 'agent' ? this.rate.rate() : undefined;
    return {
      image: this.image,
      ...(app !== undefined ? { app } : {}),
      ...(revision !== undefined ? { revision } : {}),
      ...(job !== undefined && app === undefined ? { job } : {}),
      ...(prefetch ? { prefetch } : {}),
      state: this.state,
      via: this.via,
      bytes: this.bytes,
      ...(this.total !== undefined ? { total: this.total } : {}),
      ...(this.reusedBytes > 0 ? { reusedBytes: this.reusedBytes } : {}),
      ...(this.resentBytes > 0 ? { resentBytes: this.resentBytes } : {}),
      ...(rate !== undefined ? { rate } : {}),
      ...(this.message !== undefined ? { message: this.message.slice(0, 1024) } : {}),
      ...(this.resumesAt !== undefined ? { resumesAt: this.resumesAt.toISOString() } : {}),
      since: new Date(this.since).toISOString(),
    };
  }

  /** `12.3 MiB of 48.0 MiB at 250.0 KiB/s`, for the app's phase message; undefined before the download has a size. */
  progressText(): string | undefined {
    if (this.state === 'queued') return this.message ?? 'queued behind another download';
    if (this.via === 'engine') return 'the engine pulls it';
    if (this.state === 'waiting') return this.message;
    if (this.state === 'loading') return 'loading into the engine';
    if (this.state !== 'downloading' || this.total === undefined) return undefined;
    const rate = this.rate.rate();
    return `${formatBytes(this.bytes)} of ${formatBytes(this.total)}${rate !== undefined ? ` at ${formatBytes(rate)}/s` : ''}`;
  }
}

/**
 * The lines the report carries, of images something still wants; at most
 * MAX_REPORTED_IMAGES, leaving out the oldest present ones first.
 */
export function reportedImages(entries: Iterable<ImageProgress>, wanted: ReadonlySet<string>, max = MAX_REPORTED_IMAGES): ImageDownload[] {
  const kept = [...entries].filter((p) => wanted.has(p.image));
  if (kept.length > max) {
    // Oldest present first, then the rest by age: what is left out is what matters least.
    const order = [...kept].sort((a, b) => rank(a) - rank(b) || a.since - b.since);
    const dropped = new Set(order.slice(0, kept.length - max));
    return kept.filter((p) => !dropped.has(p)).map((p) => p.report());
  }
  return kept.map((p) => p.report());
}

function rank(p: ImageProgress): number {
  return p.state === 'present' ? 0 : 1;
}

/**
 * Calls `emit` at once for `now()`, and at most every `intervalMs` for
 * `soon()`: a change of state goes out as it happens, progress in between
 * rides with it or waits for the interval.
 */
export class ReportThrottle {
  private lastAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: () => void,
    private readonly clock: () => number,
    private readonly intervalMs = PROGRESS_REPORT_MS,
  ) {}

  now(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastAt = this.clock();
    this.emit();
  }

  soon(): void {
    if (this.timer) return;
    const wait = this.lastAt + this.intervalMs - this.clock();
    if (wait <= 0) {
      this.now();
      return;
    }
    this.timer = setTimeout(() => this.now(), wait);
    this.timer.unref();
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
