/**
 * A growing delay after failed logins, per remote address: the answer to a
 * wrong password (CONNACK 4, HTTP 401) comes only after 100 ms, then 200 ms,
 * 400 ms … up to 10 s, so guessing from one address slows to a crawl, while
 * one typo costs a tenth of a second. The count of failures halves every
 * 30 s without a new one, so an address that stops failing is soon back to
 * no delay; successful logins are never delayed.
 *
 * Bounded: at most `maxAddresses` are remembered, the longest-quiet dropped first.
 */
export interface LoginDelayOptions {
  baseMs?: number;
  maxMs?: number;
  halfLifeMs?: number;
  maxAddresses?: number;
  now?: () => number;
}

export class LoginDelay {
  private readonly failures = new Map<string, { count: number; at: number }>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly halfLifeMs: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;

  constructor(options: LoginDelayOptions = {}) {
    this.baseMs = options.baseMs ?? 100;
    this.maxMs = options.maxMs ?? 10_000;
    this.halfLifeMs = options.halfLifeMs ?? 30_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Records a failure from `address`; returns how long to wait before answering it. */
  fail(address: string): number {
    const now = this.now();
    const count = this.decayed(address, now) + 1;
    this.failures.delete(address);
    if (this.failures.size >= this.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(address, { count, at: now });
    return Math.min(this.maxMs, this.baseMs * 2 ** (Math.max(1, Math.round(count)) - 1));
  }

  /** Failures counted against `address` now (decayed). */
  decayed(address: string, now = this.now()): number {
    const entry = this.failures.get(address);
    if (!entry) return 0;
    return entry.count * 0.5 ** ((now - entry.at) / this.halfLifeMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
