/**
 * Credit-based flow control per channel, the same on both ends of a session
 * (SSH's channel windows, RFC 4254 §5.2): a receiver grants WINDOW bytes when
 * a channel opens and grants more only as it consumes (writes out to its
 * socket, terminal or process), so a fast sender cannot fill the memory of
 * the receiver, of the hub in between, or of MQTT's buffers.
 *
 * Invariants:
 * - a sender pauses its source once its credit is used up and resumes on a
 *   grant; it may overshoot by the one chunk its source already handed it
 *   (a socket read), so at most WINDOW + OVERSHOOT_BYTES are outstanding;
 * - a receiver refuses (ends the session) a channel that sends past that;
 * - grants are batched: one WINDOW frame per quarter window consumed.
 */

export const DEFAULT_WINDOW_BYTES = 256 * 1024;
/** What a source may hand over in one read beyond its credit (a Node stream chunk: 64 KiB). */
export const OVERSHOOT_BYTES = 64 * 1024;

/** What a sender may still send, per channel. */
export class SendCredit {
  private readonly credit = new Map<number, number>();
  private readonly waiters = new Map<number, Set<() => void>>();

  constructor(private readonly window = DEFAULT_WINDOW_BYTES) {}

  open(channel: number): void {
    this.credit.set(channel, this.window);
  }

  /** Bytes the sender may still send on the channel (≤ 0: pause). */
  available(channel: number): number {
    return this.credit.get(channel) ?? 0;
  }

  /** Counts bytes sent; returns whether the sender may go on (false: pause the source). */
  spend(channel: number, bytes: number): boolean {
    const left = (this.credit.get(channel) ?? 0) - bytes;
    if (this.credit.has(channel)) this.credit.set(channel, left);
    return left > 0;
  }

  /** A WINDOW frame arrived; wakes whoever waits for credit on the channel. */
  grant(channel: number, bytes: number): void {
    if (!this.credit.has(channel)) return;
    const now = (this.credit.get(channel) ?? 0) + bytes;
    this.credit.set(channel, now);
    if (now > 0) this.wake(channel);
  }

  /** Calls `resume` once the channel has credit again (at once if it has). */
  onCredit(channel: number, resume: () => void): void {
    if (this.available(channel) > 0) {
      resume();
      return;
    }
    const set = this.waiters.get(channel) ?? new Set();
    this.waiters.set(channel, set);
    set.add(resume);
  }

  close(channel: number): void {
    this.credit.delete(channel);
    this.waiters.delete(channel);
  }

  private wake(channel: number): void {
    const set = this.waiters.get(channel);
    if (!set) return;
    this.waiters.delete(channel);
    for (const resume of set) resume();
  }
}

/** What a receiver has granted and consumed, per channel. */
export class ReceiveWindow {
  private readonly channels = new Map<number, { outstanding: number; consumed: number }>();

  /** `grant(channel, bytes)` sends a WINDOW frame. */
  constructor(
    private readonly grant: (channel: number, bytes: number) => void,
    private readonly window = DEFAULT_WINDOW_BYTES,
  ) {}

  open(channel: number): void {
    this.channels.set(channel, { outstanding: this.window, consumed: 0 });
  }

  /** Counts bytes that arrived; false when the sender went past its credit (a protocol violation: end the session). */
  received(channel: number, bytes: number): boolean {
    const state = this.channels.get(channel);
    if (!state) return true;
    state.outstanding -= bytes;
    return state.outstanding >= -OVERSHOOT_BYTES;
  }

  /** Bytes written out; grants them back in batches of a quarter window. */
  consumed(channel: number, bytes: number): void {
    const state = this.channels.get(channel);
    if (!state) return;
    state.consumed += bytes;
    if (state.consumed < this.window / 4) return;
    const grant = state.consumed;
    state.consumed = 0;
    state.outstanding += grant;
    this.grant(channel, grant);
  }

  close(channel: number): void {
    this.channels.delete(channel);
  }
}
