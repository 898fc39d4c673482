/**
 * `--downlink-rate`: a token bucket that paces image bytes to a rate in
 * bytes per second, shared by everything that downloads.
 *
 * Invariants:
 * - In the time T since the bucket was made, the bytes granted are at most
 *   `burst + rate × T` plus one take beyond the burst (a take larger than
 *   the bucket waits for a full bucket and leaves it in debt), so the rate
 *   measured over 10 s or more is within a few per cent of the cap.
 * - Takers are served in the order they came (FIFO): a large take is not
 *   starved by small ones, and one downloader cannot jump the queue.
 * - While someone waits, tokens may pass the burst by up to a second at the
 *   rate: a timer that fires late (a busy event loop) grants what accrued
 *   meanwhile, and what the waiter did not need stays for the next take, so
 *   lateness up to a second does not lower the long-run rate. Time when no
 *   one waits fills the bucket only up to the burst: idle time is not saved
 *   up for a flood later.
 * - An aborted take leaves the queue at once with `signal.reason`; the
 *   bytes it asked for are not spent.
 * Pure logic over an injectable clock, so its tests need no real time.
 */
import { performance } from 'node:perf_hooks';
import type { Pacer } from './types.js';

export interface PacerClock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: PacerClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface TokenBucketOptions {
  /** Bytes that may pass at once after an idle spell. Default: a quarter second at the rate, between 16 KiB and 1 MiB. */
  burst?: number;
  clock?: PacerClock;
}

/** The smallest and largest default burst: below a few TCP segments pacing gets choppy; above, a thin link floods. */
const MIN_BURST = 16 * 1024;
const MAX_BURST = 1024 * 1024;

export function defaultBurst(rate: number): number {
  return Math.round(Math.min(MAX_BURST, Math.max(MIN_BURST, rate / 4)));
}

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

export class TokenBucket implements Pacer {
  readonly rate: number;
  readonly burst: number;
  private readonly clock: PacerClock;
  private tokens: number;
  private last: number;
  private readonly queue: Waiter[] = [];
  private timer: unknown;
  private grantedBytes = 0;

  constructor(rate: number, options: TokenBucketOptions = {}) {
    if (!Number.isFinite(rate) || rate <= 0)
      throw new RangeError(`a rate limit must be a positive number of bytes per second, not ${rate}`);
    this.rate = rate;
    this.burst = options.burst ?? defaultBurst(rate);
    if (!Number.isFinite(this.burst) || this.burst <= 0)
      throw new RangeError(`a burst must be a positive number of bytes, not ${this.burst}`);
    this.clock = options.clock ?? realClock;
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  /** Bytes granted since the bucket was made. */
  get granted(): number {
    return this.grantedBytes;
  }

  /** Takers waiting now. */
  get waiting(): number {
    return this.queue.length;
  }

  take(bytes: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (bytes <= 0) return Promise.resolve();
    this.refill();
    if (this.queue.length === 0 && this.tokens >= this.needed(bytes)) {
      this.spend(bytes);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes, resolve, reject, signal, onAbort: () => this.abandon(waiter) };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.queue.push(waiter);
      this.schedule();
    });
  }

  /** A take larger than the bucket waits for a full one, then goes into debt. */
  private needed(bytes: number): number {
    return Math.min(bytes, this.burst);
  }

  private spend(bytes: number): void {
    this.tokens -= bytes;
    this.grantedBytes += bytes;
  }

  private refill(): void {
    const now = this.clock.now();
    const accrued = ((now - this.last) * this.rate) / 1000;
    this.last = now;
    // See the header: a waiter's late timer may lift the bucket past its burst; idle time may not.
    const ceiling = this.queue.length > 0 ? this.burst + this.rate : Math.max(this.burst, this.tokens);
    this.tokens = Math.min(ceiling, this.tokens + accrued);
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const head = this.queue[0];
    if (!head) return;
    const missing = this.needed(head.bytes) - this.tokens;
    const ms = Math.max(0, Math.ceil((missing * 1000) / this.rate));
    this.timer = this.clock.setTimeout(() => this.pump(), ms);
  }

  private pump(): void {
    this.timer = undefined;
    this.refill();
    for (let head = this.queue[0]; head && this.tokens >= this.needed(head.bytes); head = this.queue[0]) {
      this.queue.shift();
      head.signal.removeEventListener('abort', head.onAbort);
      this.spend(head.bytes);
      head.resolve();
    }
    this.schedule();
  }

  private abandon(waiter: Waiter): void {
    const index = this.queue.indexOf(waiter);
    if (index < 0) return;
    this.refill();
    this.queue.splice(index, 1);
    waiter.reject(waiter.signal.reason);
    // The head may have changed, and with it how long to wait.
    if (this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.schedule();
  }
}

/** No limit: a take resolves at once unless its signal is aborted. */
export const unlimited: Pacer = {
  take: (_bytes, signal) => (signal.aborted ? Promise.reject(signal.reason) : Promise.resolve()),
};
