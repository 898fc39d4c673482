/**
 * Capped exponential backoff per step key. A failed step is not retried by
 * special code: the next plan asks for it again, and this only decides
 * whether it may run yet.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

export class StepBackoff {
  private readonly entries = new Map<string, { failures: number; until: number }>();

  constructor(private readonly options: BackoffOptions) {}

  /** Records a failure; returns the delay before the step may run again. */
  failed(key: string, now: number): number {
    const failures = (this.entries.get(key)?.failures ?? 0) + 1;
    const delay = Math.min(this.options.maxMs, this.options.baseMs * 2 ** (failures - 1));
    this.entries.set(key, { failures, until: now + delay });
    return delay;
  }

  succeeded(key: string): void {
    this.entries.delete(key);
  }

  isWaiting(key: string, now: number): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.until > now;
  }

  /** Milliseconds until the earliest waiting step may run, or undefined when none waits. */
  nextReadyIn(now: number): number | undefined {
    let next: number | undefined;
    for (const { until } of this.entries.values()) {
      if (until > now && (next === undefined || until - now < next)) next = until - now;
    }
    return next;
  }

  /** A new desired state deserves a fresh attempt at everything. */
  reset(): void {
    this.entries.clear();
  }
}
