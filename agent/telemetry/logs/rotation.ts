/**
 * Lines a container printed that the engine no longer holds: a follow
 * resumed after a shipped line finds that line gone (the engine's `since` is
 * inclusive, so the lines at the cursor's timestamp come first unless the
 * log was rotated past them). How many went is unknown; the best estimate
 * at hand is the rate of the lines the engine still holds, over the gap
 * between the last line shipped and the oldest line left. Pure.
 */

/** What the engine still holds at the start of a resumed follow: its first lines' count and timestamps. */
export interface HeldSample {
  count: number;
  firstNanos: bigint;
  lastNanos: bigint;
}

/** At least one: the log was rotated past the cursor, so something was written and removed. */
export function estimateLostToRotation(shippedNanos: bigint, held: HeldSample): number {
  const gap = held.firstNanos - shippedNanos;
  const span = held.lastNanos - held.firstNanos;
  if (held.count < 2 || span <= 0n || gap <= 0n) return 1;
  // Lines are spaced span / (count - 1) apart; the gap holds that many intervals, one line fewer.
  const intervals = (Number(gap) * (held.count - 1)) / Number(span);
  return Math.max(1, Math.round(intervals) - 1);
}

export function rotationMarkerText(lost: number): string {
  return `${lost} ${lost === 1 ? 'line' : 'lines'} lost to log rotation`;
}
