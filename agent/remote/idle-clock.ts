/**
 * When a session has gone idle: `touch()` on every DATA frame either way;
 * `onIdle` fires once no touch came for `timeoutMs`.
 *
 * One timer per session, re-armed only when it fires early (for the time
 * left since the last touch), so a busy session costs a Date.now() per
 * frame, not a timer.
 */
export class IdleClock {
  private last: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly timeoutMs: number,
    private readonly onIdle: () => void,
    private readonly now: () => number = Date.now,
  ) {
    this.last = now();
    this.arm(timeoutMs);
  }

  touch(): void {
    this.last = this.now();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(() => {
      const left = this.last + this.timeoutMs - this.now();
      if (left > 0) this.arm(left);
      else {
        this.timer = undefined;
        this.onIdle();
      }
    }, delayMs);
    this.timer.unref();
  }
}
