/**
 * A token bucket with reservations, on an injected clock (milliseconds).
 * `tokens` may go negative down to −rate·maxWaitMs/1000: each negative unit
 * is a reservation of a token not yet refilled.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    /** Tokens per second (> 0). */
    readonly rate: number,
    /** Most tokens saved up while idle (≥ 1). */
    readonly burst: number,
    private readonly now: () => number,
  ) {
    if (!(rate > 0)) throw new RangeError('rate must be positive');
    if (!(burst >= 1)) throw new RangeError('burst must be at least 1');
    this.tokens = burst;
    this.last = now();
  }

  /**
   * Takes a token if one is free now (returns 0) or becomes free within
   * `maxWaitMs` (returns the wait in ms, the token reserved); otherwise takes
   * nothing and returns undefined.
   */
  take(maxWaitMs = 0): number | undefined {
    this.refill();
    const after = this.tokens - 1;
    const waitMs = after >= 0 ? 0 : (-after * 1000) / this.rate;
    if (waitMs > maxWaitMs) return undefined;
    this.tokens = after;
    return waitMs;
  }

  /** Returns a token taken but not used (a held client that left). */
  giveBack(): void {
    this.refill();
    this.tokens = Math.min(this.burst, this.tokens + 1);
  }

  /** Tokens available now (negative: reserved ahead). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const now = this.now();
    // A clock that steps back refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
  }
}
