/**
 * A token bucket over bytes: what the agent sends from its outbox is paced
 * to `bytesPerSecond`, so hours of backlog flushed after an outage do not
 * saturate a small cellular uplink (and the apps' own traffic on it).
 * A message larger than the burst goes once the bucket is full, leaving it
 * in debt, so no size is ever stuck.
 */
export class BytePacer {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly bytesPerSecond: number,
    private readonly burstBytes = bytesPerSecond,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burstBytes;
    this.updatedAt = now();
  }

  /** Takes `bytes` and returns 0, or returns how many ms to wait before asking again. 0 bytes/s means unlimited. */
  tryTake(bytes: number): number {
    if (this.bytesPerSecond <= 0) return 0;
    const now = this.now();
    this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.updatedAt) * this.bytesPerSecond) / 1000);
    this.updatedAt = now;
    const needed = Math.min(bytes, this.burstBytes);
    if (this.tokens >= needed) {
      this.tokens -= bytes;
      return 0;
    }
    return Math.max(1, Math.ceil(((needed - this.tokens) * 1000) / this.bytesPerSecond));
  }
}
