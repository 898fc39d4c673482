/**
 * The one way the agent gets an image: the reconcile loop, the job runner,
 * the agent's own upgrade and the hub's prefetches all ask here. It decides
 * which image downloads next, through which path (the agent's own resumable
 * download, fetch-image.ts, or the engine's pull), paces it (the daily
 * budget and the downlink rate), and says how it goes: an ImageDownload per
 * image in the state report (download-report.ts), events on the timeline
 * (download-events.ts), and the device's sums (download-totals.ts).
 *
 * Invariants:
 * - One image downloads at a time: a thin link gains nothing from two, and
 *   one finishes sooner.
 * - Two callers wanting one image share one download.
 * - What is wanted now goes first: an app's image, a job's. Then an image an
 *   app's held update will swap to (its window is closed: the reconciler
 *   pulls it ahead), then the hub's prefetches. A more urgent request pauses
 *   a less urgent download (aborts it: what it stored stays, and it resumes
 *   from there once the urgent one is in), since waiting behind a 200 MB
 *   prefetch on a 256 kbit/s link would hold a first install or a job for
 *   hours, and a pause costs one request. The engine loading an image, and
 *   an engine pull (which cannot resume), are never paused.
 * - A download nobody waits for any more (the reconciler aborts its pull for
 *   a newer desired state, which usually wants the same image again) goes on
 *   for ORPHAN_GRACE_MS before it is stopped.
 * - The engine pulls instead of the agent when the app asks for it
 *   (`spec.update.pull: engine`), when the runtime cannot load an archive,
 *   and after a failure that says the agent's own path cannot work
 *   (fallbackReason); never after one that says the registry or the link
 *   is down, where the engine would fail alike and double the traffic.
 * - A prefetch that fails is tried again after a backoff (reported
 *   `waiting`); a waited-for pull that fails rejects its callers, whose own
 *   retry asks again.
 * - Nothing here throws into its callers but their pull's own failure, as
 *   the engine's pull would have it: a RuntimeError `pull_failed` (the
 *   agent's own 404 and 401 carried as the status), so a caller tells an
 *   image that cannot be had from a link that is down the same either way.
 */
import type { Logger } from 'pino';
import type { DownloadTotals, ImageDownload, ImageDownloadVia, RegistryAuth } from '../../shared/index.js';
import { Signal } from '../../shared/signal.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import type { NewEvent } from '../wiring/uplink.js';
import { DailyBudget } from './daily-budget.js';
import {
  completedEvent,
  type DownloadEvent,
  engineStartedEvent,
  failedEvent,
  fallbackEvent,
  iso,
  ResumedEvents,
  startedEvent,
  waitingEvent,
} from './download-events.js';
import { ImageProgress, type PullOwner, ReportThrottle, reportedImages } from './download-report.js';
import type { DownloadTotalsFile } from './download-totals.js';
import { asPullError, fallbackReason } from './engine-fallback.js';
import type { FetchImage, ImageSource, PrefetchRequest, PullRequest } from './image-source.js';
import { allOf } from './pacer.js';
import { type FetchEvent, isFetchError, type Pacer } from './types.js';

export interface ImagePullerOptions {
  /** The agent's own download; absent when the runtime cannot load an archive (then the engine pulls every image). */
  fetch?: FetchImage;
  engine: Pick<ContainerRuntime, 'pull' | 'hasImage'>;
  event: (event: NewEvent) => void;
  logger: Logger;
  /** The downlink rate's pacer (rate-limit.ts); absent: unlimited. */
  rate?: Pacer;
  /** `--downlink-rate`, for the report. */
  rateLimit?: number;
  /** `--download-budget` in bytes per day; absent or 0: none. */
  budgetBytesPerDay?: number;
  /** The budget's zone (default the device's) and timers, for tests. */
  budgetZone?: string;
  totals?: DownloadTotalsFile;
  /** Images something still wants (desired apps', prefetches', jobs'): a present one stays in the report while it is. */
  wanted?: () => ReadonlySet<string>;
  /** An image the puller brought into the engine, for whom (the reconciler's records: its image collection removes it once unused). */
  onDownloaded?: (image: string, owner: PullOwner) => void;
  now?: () => number;
  progressReportMs?: number;
  orphanGraceMs?: number;
  prefetchRetry?: { firstMs: number; maxMs: number };
}

export const ORPHAN_GRACE_MS = 5_000;
export const PREFETCH_RETRY = { firstMs: 30_000, maxMs: 15 * 60_000 };

/** How urgent a want is: lower goes first. */
const NOW = 0;
const AHEAD = 1;
const PREFETCH = 2;

interface Waiter {
  owner: PullOwner;
  resolve(): void;
  reject(err: unknown): void;
  /** Stops listening to the caller's signal. */
  detach(): void;
}

interface Want {
  image: string;
  auth: RegistryAuth | undefined;
  via: ImageDownloadVia;
  /** Why the engine pulls it, when the caller said. */
  why: string | undefined;
  waiters: Set<Waiter>;
  /** Set while the desired state asks for it ahead of time. */
  prefetch: PrefetchRequest | undefined;
  /** Order among equally urgent wants. */
  queuedAt: number;
  /** Set while it runs. */
  run: Run | undefined;
  /** A prefetch that failed is tried again from here. */
  retryAt: number | undefined;
  failures: number;
  /** Its started event was said (a paused download resuming says `resumed`, not `started` again). */
  announced: boolean;
  digests: Set<string>;
}

interface Run {
  controller: AbortController;
  /** The agent's download is receiving bytes (not yet loading): it may be paused. */
  pausable: boolean;
  /** Why it was aborted by the puller itself. */
  stopped?: 'paused' | 'unwanted';
  startedAt: number;
  received: number;
  resent: number;
  reused: number;
}

/** Thrown into a download the puller stops itself. */
class Stopped extends Error {}

export class ImagePuller implements ImageSource {
  /** The report changed: the state report goes out again (at most every progressReportMs for progress alone). */
  readonly changed: Signal<void>;
  private readonly wants = new Map<string, Want>();
  private readonly entries = new Map<string, ImageProgress>();
  /** Images the engine pulls for the rest of this process, with why. */
  private readonly engineOnly = new Map<string, string>();
  private active: Want | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly orphanTimers = new Map<Want, NodeJS.Timeout>();
  private readonly budget: DailyBudget | undefined;
  private readonly pace: Pacer;
  private readonly throttle: ReportThrottle;
  private readonly resumes: ResumedEvents;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: ImagePullerOptions) {
    this.log = options.logger.child({ component: 'images' });
    this.now = options.now ?? Date.now;
    this.changed = new Signal((err) => this.log.error({ err }, 'reporting image downloads failed'));
    this.throttle = new ReportThrottle(() => this.changed.emit(), this.now, options.progressReportMs);
    this.resumes = new ResumedEvents(this.now);
    const limit = options.budgetBytesPerDay ?? 0;
    const totals = options.totals;
    this.budget =
      limit > 0
        ? new DailyBudget({
            limit,
            now: this.now,
            ...(options.budgetZone !== undefined ? { zone: options.budgetZone } : {}),
            ...(totals?.restoredBudget ? { restored: totals.restoredBudget } : {}),
            onSpent: (resetsAt) => this.budgetSpent(resetsAt),
            onCounted: () => totals?.budgetCounted(),
          })
        : undefined;
    if (this.budget && totals) {
      const budget = this.budget;
      totals.trackBudget(() => budget.day());
    }
    this.pace = allOf([this.budget, options.rate]);
  }

  /** Resolves once the engine holds `image`; rejects with the download's failure, or the signal's reason. */
  pull(request: PullRequest): Promise<void> {
    const { signal } = request;
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.closed) return Promise.reject(new Error('agent stopping'));
    const want = this.wantOf(request.image, request.auth, request.via);
    if (request.via === 'engine' && request.why !== undefined) want.why ??= request.why;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        want.waiters.delete(waiter);
        reject(signal.reason);
        this.released(want);
      };
      const waiter: Waiter = {
        owner: request.owner,
        resolve,
        reject,
        detach: () => signal.removeEventListener('abort', onAbort),
      };
      signal.addEventListener('abort', onAbort, { once: true });
      want.waiters.add(waiter);
      this.cancelOrphanTimer(want);
      // Someone waits for it: a prefetch's retry backoff does not hold it back.
      if (!want.run) want.retryAt = undefined;
      this.queued(want);
    });
  }

  /** The images the desired state wants fetched ahead of time, all of them: one no longer named stops (unless a caller waits for it). */
  prefetch(requests: readonly PrefetchRequest[]): void {
    if (this.closed) return;
    const named = new Map(requests.map((r) => [r.image, r]));
    for (const want of this.wants.values()) {
      if (want.prefetch && !named.has(want.image)) {
        want.prefetch = undefined;
        this.released(want);
      }
    }
    for (const request of named.values()) {
      // Fetched already: the line stays present while the desired state names it (reports()).
      if (!this.wants.has(request.image) && this.entries.get(request.image)?.state === 'present') continue;
      const want = this.wantOf(request.image, request.auth, request.via);
      want.prefetch = request;
      this.cancelOrphanTimer(want);
      this.queued(want);
    }
  }

  /** The state report's `images`: the lines of images in hand, and of others something still wants (the rest are forgotten). */
  reports(): ImageDownload[] {
    const wanted = new Set(this.options.wanted?.() ?? []);
    for (const want of this.wants.values()) wanted.add(want.image);
    for (const image of this.entries.keys()) if (!wanted.has(image)) this.entries.delete(image);
    return reportedImages(this.entries.values(), wanted);
  }

  /** The state report's `downloads`; undefined without a totals file. */
  totals(): DownloadTotals | undefined {
    return this.options.totals?.report(this.options.rateLimit ?? 0, this.budget?.state());
  }

  /** The images asked for and not in the engine yet, with their credentials (what the store must keep). */
  inHand(): { image: string; auth?: RegistryAuth }[] {
    return [...this.wants.values()].map(({ image, auth }) => ({ image, ...(auth ? { auth } : {}) }));
  }

  /** `12.3 MiB of 48.0 MiB at 250.0 KiB/s`: how an image's download goes, for the app's phase message. */
  progress(image: string): string | undefined {
    return this.entries.get(image)?.progressText();
  }

  /** Stops the download in progress (what it stored stays) and fails every caller still waiting. */
  close(): void {
    this.closed = true;
    this.throttle.close();
    clearTimeout(this.retryTimer);
    for (const timer of this.orphanTimers.values()) clearTimeout(timer);
    this.orphanTimers.clear();
    for (const want of this.wants.values()) {
      want.run?.controller.abort(new Error('agent stopping'));
      for (const waiter of want.waiters) {
        waiter.detach();
        waiter.reject(new Error('agent stopping'));
      }
      want.waiters.clear();
    }
    this.options.totals?.close();
  }

  private wantOf(image: string, auth: RegistryAuth | undefined, via: ImageDownloadVia | undefined): Want {
    let want = this.wants.get(image);
    if (!want) {
      want = {
        image,
        auth,
        via: via ?? 'agent',
        why: undefined,
        waiters: new Set(),
        prefetch: undefined,
        queuedAt: this.now(),
        run: undefined,
        retryAt: undefined,
        failures: 0,
        announced: false,
        digests: new Set(),
      };
      this.wants.set(image, want);
    }
    return want;
  }

  /** A want was added to or asked again: its report line says so, and the queue moves. */
  private queued(want: Want): void {
    const entry = this.entryOf(want.image);
    const owner = this.ownerOf(want);
    const ownerChanged = JSON.stringify(owner) !== JSON.stringify(entry.owner);
    entry.owner = owner;
    // A failed or present line is a new download now; one queued (perhaps paused) or in hand stays as it is.
    if (!want.run && want.retryAt === undefined && entry.state !== 'queued') {
      entry.restart(this.viaOf(want));
      entry.enter('queued');
      this.throttle.now();
    } else if (ownerChanged) {
      this.throttle.now();
    }
    this.pump();
  }

  /** Nobody wants it any more but perhaps a prefetch: a run goes on for a grace period, a queued one goes at once. */
  private released(want: Want): void {
    if (want.waiters.size > 0 || want.prefetch || this.closed) {
      this.entryOf(want.image).owner = this.ownerOf(want);
      this.pump();
      return;
    }
    if (!want.run) {
      this.drop(want);
      this.pump();
      return;
    }
    if (this.orphanTimers.has(want)) return;
    const timer = setTimeout(() => {
      this.orphanTimers.delete(want);
      if (want.waiters.size > 0 || want.prefetch || !want.run) return;
      want.run.stopped = 'unwanted';
      want.run.controller.abort(new Stopped(`${want.image} is no longer wanted`));
    }, this.options.orphanGraceMs ?? ORPHAN_GRACE_MS);
    timer.unref();
    this.orphanTimers.set(want, timer);
  }

  private cancelOrphanTimer(want: Want): void {
    const timer = this.orphanTimers.get(want);
    if (timer) clearTimeout(timer);
    this.orphanTimers.delete(want);
  }

  /** Forgets a want nobody has; its line goes too unless it is present or failed (what the report still says of it). */
  private drop(want: Want): void {
    this.wants.delete(want.image);
    this.resumes.forget(want.digests);
    const entry = this.entries.get(want.image);
    if (entry && entry.state !== 'present' && entry.state !== 'failed') {
      this.entries.delete(want.image);
      this.throttle.now();
    }
  }

  /** Starts the most urgent want when nothing runs, or pauses a less urgent download for it. */
  private pump(): void {
    if (this.closed) return;
    const now = this.now();
    const ready = [...this.wants.values()].filter((w) => !w.run && (w.retryAt === undefined || w.retryAt <= now));
    ready.sort((a, b) => this.urgency(a) - this.urgency(b) || a.queuedAt - b.queuedAt);
    const next = ready[0];
    this.scheduleRetry();
    if (!next) return;
    if (this.active) {
      const run = this.active.run;
      if (run?.pausable && !run.stopped && this.urgency(next) < this.urgency(this.active)) {
        this.log.info({ image: this.active.image, for: next.image }, 'pausing a download for a more urgent one');
        run.stopped = 'paused';
        run.controller.abort(new Stopped(`paused for ${next.image}`));
      }
      return;
    }
    this.start(next);
  }

  private urgency(want: Want): number {
    let urgency = want.prefetch ? PREFETCH : Number.POSITIVE_INFINITY;
    for (const waiter of want.waiters) urgency = Math.min(urgency, waiter.owner.prefetch ? AHEAD : NOW);
    return urgency;
  }

  /** Who the report names: the most urgent waiter, else the prefetch. */
  private ownerOf(want: Want): PullOwner {
    let best: PullOwner | undefined;
    for (const waiter of want.waiters) if (!best || (best.prefetch && !waiter.owner.prefetch)) best = waiter.owner;
    return best ?? want.prefetch?.owner ?? {};
  }

  private viaOf(want: Want): ImageDownloadVia {
    return want.via === 'engine' || !this.options.fetch || this.engineOnly.has(want.image) ? 'engine' : 'agent';
  }

  private entryOf(image: string): ImageProgress {
    let entry = this.entries.get(image);
    if (!entry) {
      entry = new ImageProgress(image, this.now);
      this.entries.set(image, entry);
    }
    return entry;
  }

  private start(want: Want): void {
    const run: Run = { controller: new AbortController(), pausable: false, startedAt: this.now(), received: 0, resent: 0, reused: 0 };
    want.run = run;
    want.retryAt = undefined;
    this.active = want;
    void this.execute(want, run)
      .catch((err: unknown) => this.log.error({ image: want.image, err }, 'an image download ended unexpectedly'))
      .finally(() => {
        want.run = undefined;
        if (this.active === want) this.active = undefined;
        this.pump();
      });
  }

  private async execute(want: Want, run: Run): Promise<void> {
    const { image } = want;
    const entry = this.entryOf(image);
    const { signal } = run.controller;
    try {
      if (entry.state !== 'queued' || entry.via !== this.viaOf(want)) entry.restart(this.viaOf(want));
      if (await this.options.engine.hasImage(image)) {
        // Another part, or an earlier process, brought it in meanwhile.
        this.succeeded(want, entry, run, { downloaded: false });
        return;
      }
      if (this.viaOf(want) === 'engine') {
        await this.enginePull(want, entry, run, this.engineReason(want));
      } else {
        await this.agentFetch(want, entry, run);
      }
      this.succeeded(want, entry, run, { downloaded: true });
    } catch (err) {
      if (run.stopped) this.stopped(want, entry, run.stopped, err);
      else if (signal.aborted || this.closed)
        this.log.info({ image, why: String((signal.reason as Error)?.message ?? signal.reason) }, 'download stopped');
      else this.failed(want, entry, err);
    }
  }

  private engineReason(want: Want): string {
    if (want.via === 'engine') return want.why ?? "the app asks for the engine's pull (spec.update.pull: engine)";
    if (!this.options.fetch) return "this agent's container runtime loads no image archives";
    return this.engineOnly.get(want.image) ?? 'the engine pulls it';
  }

  /** The agent's own download, and the engine's pull when the failure says the agent's path cannot work. */
  private async agentFetch(want: Want, entry: ImageProgress, run: Run): Promise<void> {
    const fetch = this.options.fetch!;
    const { signal } = run.controller;
    let planned = false;
    if (this.budget?.spent) {
      // Started only once the day has room: a connection held open until midnight helps no one.
      const { resetsAt } = this.budget.state();
      this.moveTo(entry, 'waiting', { message: budgetMessage(resetsAt), resumesAt: resetsAt });
      await this.budget.room(signal);
    }
    this.moveTo(entry, 'downloading');
    run.pausable = true;
    try {
      await fetch(want.image, want.auth, {
        signal,
        pace: this.pace,
        onEvent: (event) => {
          if (event.type === 'planned') planned = true;
          this.onFetchEvent(want, entry, run, event);
        },
      });
    } catch (err) {
      if (signal.aborted || this.closed) throw err;
      const why = fallbackReason(err, planned);
      if (why === undefined) throw err;
      if (isFetchError(err) && err.code !== 'store_failed') this.engineOnly.set(want.image, why);
      this.log.warn({ image: want.image, err: (err as Error).message }, 'the engine pulls the image instead of the agent');
      this.say(fallbackEvent(want.image, entry.owner, why));
      run.pausable = false;
      entry.restart('engine');
      await this.enginePull(want, entry, run, why, { announced: true });
    } finally {
      run.pausable = false;
    }
  }

  private async enginePull(want: Want, entry: ImageProgress, run: Run, why: string, { announced = false } = {}): Promise<void> {
    entry.via = 'engine';
    this.moveTo(entry, 'downloading', { message: why });
    if (!announced) this.say(engineStartedEvent(want.image, entry.owner, why));
    want.announced = true;
    await this.options.engine.pull(want.image, want.auth, run.controller.signal);
  }

  private onFetchEvent(want: Want, entry: ImageProgress, run: Run, event: FetchEvent): void {
    switch (event.type) {
      case 'planned':
        entry.total = event.total;
        entry.bytes = Math.min(event.storedBytes, event.total);
        entry.reusedBytes = event.reusedBytes;
        run.reused = event.reusedBytes;
        if (!want.announced) this.say(startedEvent(want.image, entry.owner, event));
        want.announced = true;
        this.log.info({ image: want.image, ...event, type: undefined }, 'image download planned');
        this.throttle.now();
        return;
      case 'resumed': {
        want.digests.add(event.digest);
        const said = this.resumes.resumed(want.image, entry.owner, event.digest, event.offset);
        if (said) this.say(said);
        return;
      }
      case 'received':
        run.received += event.bytes;
        entry.received(event.bytes);
        this.options.totals?.received(event.bytes);
        // Bytes flow again after the budget's wait.
        if (entry.state === 'waiting') this.moveTo(entry, 'downloading');
        else this.throttle.soon();
        return;
      case 'resent':
        run.resent += event.bytes;
        entry.resent(event.bytes);
        this.options.totals?.resent(event.bytes);
        this.log.warn({ image: want.image, digest: event.digest, bytes: event.bytes, reason: event.reason }, 'bytes to fetch again');
        this.throttle.soon();
        return;
      case 'retry':
        this.log.info(
          { image: want.image, digest: event.digest, attempt: event.attempt, delayMs: event.delayMs, err: event.error },
          'blob download broke; resuming',
        );
        return;
      case 'whole-blob':
        this.log.warn({ image: want.image, digest: event.digest }, 'the registry ignores Range: the blob is downloaded whole');
        return;
      case 'loading':
        run.pausable = false;
        this.moveTo(entry, 'loading');
        return;
    }
  }

  private budgetSpent(resetsAt: Date): void {
    const want = this.active;
    if (!want) return;
    const entry = this.entryOf(want.image);
    const limit = this.options.budgetBytesPerDay ?? 0;
    this.log.warn({ image: want.image, resetsAt: resetsAt.toISOString() }, "today's download budget is spent");
    this.say(waitingEvent(want.image, entry.owner, limit, resetsAt));
    this.moveTo(entry, 'waiting', { message: budgetMessage(resetsAt), resumesAt: resetsAt });
  }

  private succeeded(want: Want, entry: ImageProgress, run: Run, { downloaded }: { downloaded: boolean }): void {
    if (entry.total !== undefined) entry.bytes = entry.total;
    // Brought by the engine, the line keeps saying why.
    this.moveTo(entry, 'present', entry.via === 'engine' && entry.message !== undefined ? { message: entry.message } : {});
    want.failures = 0;
    if (downloaded) {
      const ms = this.now() - run.startedAt;
      this.say(
        completedEvent(want.image, entry.owner, {
          via: entry.via,
          bytes: run.received,
          reusedBytes: run.reused,
          resentBytes: run.resent,
          ms,
        }),
      );
      if (entry.via === 'agent') this.options.totals?.completed(run.reused);
      this.options.onDownloaded?.(want.image, entry.owner);
      this.log.info({ image: want.image, via: entry.via, bytes: run.received, ms }, 'image is in the engine');
    }
    for (const waiter of want.waiters) {
      waiter.detach();
      waiter.resolve();
    }
    want.waiters.clear();
    // A prefetch stays wanted (its line stays present) until the desired state drops it; the want itself is done.
    this.wants.delete(want.image);
    this.resumes.forget(want.digests);
  }

  private failed(want: Want, entry: ImageProgress, err: unknown): void {
    const why = (err as Error)?.message ?? String(err);
    this.log.warn({ image: want.image, via: entry.via, err: why }, 'image download failed');
    this.say(failedEvent(want.image, entry.owner, why));
    const failure = asPullError(err, want.image);
    for (const waiter of want.waiters) {
      waiter.detach();
      waiter.reject(failure);
    }
    want.waiters.clear();
    want.failures += 1;
    if (want.prefetch) {
      const retry = this.options.prefetchRetry ?? PREFETCH_RETRY;
      const delay = Math.min(retry.maxMs, retry.firstMs * 2 ** (want.failures - 1));
      want.retryAt = this.now() + delay;
      this.moveTo(entry, 'waiting', {
        message: `${why}; tried again at ${iso(new Date(want.retryAt))}`,
        resumesAt: new Date(want.retryAt),
      });
      return;
    }
    this.moveTo(entry, 'failed', { message: why });
    this.wants.delete(want.image);
  }

  /** Paused for a more urgent download (queued again), or no longer wanted (gone). */
  private stopped(want: Want, entry: ImageProgress, why: 'paused' | 'unwanted', err: unknown): void {
    if (why === 'paused') {
      this.moveTo(entry, 'queued', { message: `paused: ${(err as Error).message.replace(/^paused for /, '')} is wanted first` });
      return;
    }
    this.log.info({ image: want.image }, 'download stopped: nothing wants the image any more');
    this.drop(want);
  }

  private moveTo(entry: ImageProgress, state: ImageDownload['state'], fields: { message?: string; resumesAt?: Date } = {}): void {
    if (entry.enter(state, fields)) this.throttle.now();
  }

  private say(event: DownloadEvent): void {
    try {
      this.options.event(event);
    } catch (err) {
      this.log.error({ err, type: event.type }, 'cannot queue an image download event');
    }
  }

  /** A timer for the earliest prefetch retry, so a failed prefetch is tried again without anything else happening. */
  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    const times = [...this.wants.values()].flatMap((w) => (w.retryAt !== undefined && !w.run ? [w.retryAt] : []));
    if (times.length === 0 || this.closed) return;
    const wait = Math.max(Math.min(...times) - this.now(), 0);
    this.retryTimer = setTimeout(() => this.pump(), wait);
    this.retryTimer.unref();
  }
}

function budgetMessage(resetsAt: Date): string {
  return `today's download budget is spent; downloads go on at ${iso(resetsAt)}`;
}
