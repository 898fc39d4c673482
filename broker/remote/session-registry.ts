/**
 * The remote-access sessions the hub relays, by session id: what the ACL asks
 * (may device D publish on this session's `up`?), where the hub's one `up`
 * subscription routes a frame, and which sessions a dropped device connection
 * ends.
 *
 * A session is added before the device is asked to open it (its reply and
 * first frames may race the hub's bookkeeping) and, once it ends, stays
 * "recently ended" for ENDED_GRACE_MS: frames the device sent before it heard
 * `session.close` are then still accepted by the ACL (and dropped by the
 * relay) rather than refused, which would close the device's connection and
 * every other session on it.
 */
import type { SessionRequest } from '../../shared/remote/requests.js';

export const ENDED_GRACE_MS = 60_000;

/** What the relay of one session does when the registry routes something to it. */
export interface SessionLink {
  /** A frame the device published on the session's `up` topic. */
  up(frame: Buffer): void;
  /** The device's MQTT connection ended. */
  linkLost(): void;
  /** The hub is stopping. */
  shutdown(): void;
}

export interface RelayedSession {
  id: string;
  deviceId: string;
  /** Who opened it, as audited. */
  actor: string;
  request: SessionRequest;
  link: SessionLink;
}

/** Payload bytes of DATA frames relayed, over every session since the hub started (Prometheus). */
export interface SessionByteTotals {
  up: number;
  down: number;
}

export class SessionRegistry {
  private readonly open = new Map<string, RelayedSession>();
  /** Ended sessions' device and when their grace ends. */
  private readonly ended = new Map<string, { deviceId: string; until: number }>();
  readonly bytes: SessionByteTotals = { up: 0, down: 0 };
  /** The same per device: one entry per device that ever had a session since the hub started, bounded by the fleet. */
  private readonly byDevice = new Map<string, SessionByteTotals>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  add(session: RelayedSession): void {
    this.open.set(session.id, session);
  }

  get(sessionId: string): RelayedSession | undefined {
    return this.open.get(sessionId);
  }

  remove(sessionId: string): void {
    const session = this.open.get(sessionId);
    if (!session) return;
    this.open.delete(sessionId);
    this.forgetExpired();
    this.ended.set(sessionId, { deviceId: session.deviceId, until: this.nowMs() + ENDED_GRACE_MS });
  }

  /** The ACL's lookup: open, or ended so recently that the device may not have heard yet. */
  isOpen(deviceId: string, sessionId: string): boolean {
    const session = this.open.get(sessionId);
    if (session) return session.deviceId === deviceId;
    const ended = this.ended.get(sessionId);
    return ended !== undefined && ended.deviceId === deviceId && ended.until > this.nowMs();
  }

  /** Counts relayed DATA payload bytes, in the hub's totals and the device's. */
  countBytes(deviceId: string, direction: 'up' | 'down', bytes: number): void {
    this.bytes[direction] += bytes;
    let device = this.byDevice.get(deviceId);
    if (!device) {
      device = { up: 0, down: 0 };
      this.byDevice.set(deviceId, device);
    }
    device[direction] += bytes;
  }

  /** Each device's session bytes since the hub started (its bandwidth figures in Prometheus). */
  deviceBytes(): IterableIterator<[string, Readonly<SessionByteTotals>]> {
    return this.byDevice.entries();
  }

  ofDevice(deviceId: string): RelayedSession[] {
    return [...this.open.values()].filter((session) => session.deviceId === deviceId);
  }

  all(): RelayedSession[] {
    return [...this.open.values()];
  }

  get size(): number {
    return this.open.size;
  }

  private forgetExpired(): void {
    const now = this.nowMs();
    // Insertion order is end order: the expired ones are at the front.
    for (const [id, ended] of this.ended) {
      if (ended.until > now) break;
      this.ended.delete(id);
    }
  }
}
