/**
 * When the agent tries the hub again after losing it: exponential backoff
 * with full jitter (a uniformly random wait between 0 and base·2^attempt,
 * capped). MQTT.js's own reconnect is a fixed period with no jitter: after a
 * hub restart a whole fleet would knock again in lockstep, every period, and
 * each wave could take the hub down again. Full jitter spreads a fleet's
 * attempts evenly over the window, and the window widens while the outage lasts.
 */
export interface BackoffPolicy {
  /** The window of the first retry. */
  baseMs: number;
  /** The widest window, reached after a few failures. */
  maxMs: number;
  /** Where in the window (0 ≤ r < 1); tests pin it to check the schedule. */
  random?: () => number;
}

export const DEFAULT_RECONNECT: BackoffPolicy = { baseMs: 1_000, maxMs: 60_000 };

/** The wait before retry number `attempt` (0 for the first retry after a loss). */
export function reconnectDelay(attempt: number, policy: BackoffPolicy, random: () => number = policy.random ?? Math.random): number {
  // 2^attempt overflows to Infinity for huge attempts, and min() then takes the cap.
  const window = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  return Math.floor(random() * window);
}
