/**
 * Per-app rate limiting of log lines: a token bucket on an injected clock,
 * and a gate that turns its refusals into runs of drops.
 */

/** `ratePerSecond` tokens a second, up to `burst` saved; fractional, so a low rate refills smoothly. */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) throw new Error(`invalid token bucket: rate ${ratePerSecond}/s, burst ${burst}`);
    this.tokens = burst;
    this.refilledAt = now();
  }

  /** Tokens available now. */
  get available(): number {
    this.refill();
    return this.tokens;
  }

  /** Takes one token if there is one. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private refill(): void {
    const now = this.now();
    // A clock that steps back refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, now - this.refilledAt);
    this.refilledAt = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
  }
}

/**
 * One app's rate limit: `linesPerSecond` with a burst of twice that.
 *
 * Once the bucket runs dry the app stays suppressed until a second's worth
 * of tokens has come back, rather than letting one line through every
 * 1/rate seconds. The long-run rate is the same, but a sustained flood then
 * reads as runs of a second's worth of lines separated by gaps, each gap
 * reported by one `suppressed N lines` marker (one per batch while it lasts),
 * instead of a marker between every two accepted lines, which would double
 * the output of exactly the app that is already too loud.
 */
export class RateLimit {
  private readonly bucket: TokenBucket;
  private readonly resumeAt: number;
  private suppressed = false;

  constructor(linesPerSecond: number, now: () => number) {
    this.bucket = new TokenBucket(linesPerSecond, 2 * linesPerSecond, now);
    this.resumeAt = linesPerSecond;
  }

  /** Whether one more line may pass now. */
  admit(): boolean {
    if (this.suppressed) {
      if (this.bucket.available < this.resumeAt) return false;
      this.suppressed = false;
    }
    if (this.bucket.take()) return true;
    this.suppressed = true;
    return false;
  }
}
