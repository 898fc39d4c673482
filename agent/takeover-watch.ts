/**
 * Telling a connection taken over by another agent with this device's id from
 * an ordinary lost link.
 *
 * An MQTT broker closes a connection when another one with the same client id
 * arrives [MQTT-3.1.4-2]. Two agents with one id (a copied SD card) therefore
 * take the connection from each other at every reconnect, for ever; MQTT
 * 3.1.1 says nothing about why. What this agent sees is its connection closed
 * by the hub (a FIN, not a reset or a keepalive timeout) soon after it was
 * made, again and again. After `streak` such closes in a row the link stops
 * retrying at once and waits longer and longer (half a window plus a random
 * half, the window doubling from `baseMs` to `maxMs`), so the two agents stop
 * flapping, and it says why.
 *
 * "Soon" is at least `minShortLivedMs` and, once backing off, twice the
 * window: the other agent's connection then lives about as long as this one
 * waits, and must still count. A connection that outlives that, or ends any
 * other way, ends the streak.
 */
export interface TakeoverPolicy {
  /** Hub-closed short connections in a row that count as a takeover streak. */
  streak: number;
  baseMs: number;
  maxMs: number;
  minShortLivedMs: number;
  /** Where in the second half of the window (0 ≤ r < 1); tests pin it. */
  random?: () => number;
}

export const DEFAULT_TAKEOVER: TakeoverPolicy = { streak: 3, baseMs: 30_000, maxMs: 600_000, minShortLivedMs: 60_000 };

export interface ConnectionEnd {
  /** From CONNACK to close. */
  livedMs: number;
  /** The hub closed it (the socket ended), rather than an error, a timeout or this agent. */
  byHub: boolean;
}

export interface TakeoverVerdict {
  /** Hub-closed short connections in a row so far. */
  streak: number;
  /** How long to wait before connecting again. */
  delayMs: number;
}

export class TakeoverWatch {
  private streak = 0;
  private windowMs = 0;

  constructor(private readonly policy: TakeoverPolicy = DEFAULT_TAKEOVER) {}

  /** A connection ended: a verdict when it continues a takeover streak that calls for backing off, else undefined. */
  ended(end: ConnectionEnd): TakeoverVerdict | undefined {
    const shortLivedMs = Math.max(this.policy.minShortLivedMs, 2 * this.windowMs);
    if (!end.byHub || end.livedMs >= shortLivedMs) {
      this.streak = 0;
      this.windowMs = 0;
      return undefined;
    }
    this.streak++;
    if (this.streak < this.policy.streak) return undefined;
    // 2^n overflows to Infinity for a huge streak, and min() then takes the cap.
    this.windowMs = Math.min(this.policy.maxMs, this.policy.baseMs * 2 ** (this.streak - this.policy.streak));
    const random = this.policy.random ?? Math.random;
    return { streak: this.streak, delayMs: Math.floor(this.windowMs / 2 + (random() * this.windowMs) / 2) };
  }
}
