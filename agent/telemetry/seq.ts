/**
 * Sequence numbers for log batches and metric samples: unique per device, so
 * the hub stores a redelivered message once. The high part is the agent's
 * boot count (persisted once per start), the low part counts messages in
 * memory: seq = boot * 2^32 + n. 2^21 boots of 2^32 messages each fit in a
 * safe integer.
 */
const PER_BOOT = 2 ** 32;
const MAX_BOOT = 2 ** 21 - 1;

export class TelemetrySeq {
  private n = 0;
  private readonly base: number;

  constructor(boot: number) {
    if (!Number.isSafeInteger(boot) || boot < 1) throw new Error(`invalid boot count ${boot}`);
    // Wrapping after two million restarts can only collide with data the hub has long expired.
    this.base = ((boot - 1) % MAX_BOOT) * PER_BOOT + PER_BOOT;
  }

  next(): number {
    this.n = (this.n + 1) % PER_BOOT;
    return this.base + this.n;
  }
}
