/**
 * Who follows what, for live follow across hub replicas
 * (follow-across-replicas.ts): this replica's own follow streams, counted per
 * key, and the keys each other replica said it follows, each held for a lease
 * the replica renews. Pure bookkeeping: no timers, no I/O; time comes in as
 * arguments.
 *
 * A key names one stream of committed records: a device's logs
 * (`logs/D`), a device's events (`events/D`), every device's events
 * (`events/*`), or every device's metrics samples (`metrics/*`, for the
 * fleet's sparklines). A replica relays a committed record only to the replicas
 * holding a key it falls under, so a fleet nobody follows costs no relaying.
 */
export type FollowChannel = 'logs' | 'events' | 'metrics';
export type FollowKey = `${FollowChannel}/${string}`;

/** Every device's events. */
export const ALL_DEVICES = '*';

export function followKey(channel: FollowChannel, device: string | undefined): FollowKey {
  return `${channel}/${device ?? ALL_DEVICES}`;
}

/** The device a `logs/D` key follows, else undefined. */
export function logsDevice(key: string): string | undefined {
  return key.startsWith('logs/') ? key.slice('logs/'.length) : undefined;
}

export function isFollowKey(value: unknown): value is FollowKey {
  return (
    typeof value === 'string' &&
    (/^(logs|events)\/[^/*]+$/.test(value) || value === `events/${ALL_DEVICES}` || value === `metrics/${ALL_DEVICES}`)
  );
}

/** This replica's follow streams: how many hold each key. */
export class LocalInterests {
  private readonly counts = new Map<FollowKey, number>();

  /** True when the key is new (the set changed). */
  add(key: FollowKey): boolean {
    const count = this.counts.get(key) ?? 0;
    this.counts.set(key, count + 1);
    return count === 0;
  }

  /** True when the last holder left (the set changed). */
  remove(key: FollowKey): boolean {
    const count = this.counts.get(key);
    if (count === undefined) return false;
    if (count > 1) {
      this.counts.set(key, count - 1);
      return false;
    }
    this.counts.delete(key);
    return true;
  }

  keys(): FollowKey[] {
    return [...this.counts.keys()];
  }

  get size(): number {
    return this.counts.size;
  }
}

interface Held {
  keys: ReadonlySet<FollowKey>;
  seq: number;
  heardAtMs: number;
}

/** What the other replicas follow, as each last said; a set not renewed within `leaseMs` is dropped. */
export class RemoteInterests {
  private readonly replicas = new Map<string, Held>();

  constructor(private readonly leaseMs: number) {}

  /**
   * Takes a replica's whole set; an older announcement than the one held
   * (messages of one replica arrive in order, but a restarted replica starts
   * its seqs again, under a new id) is ignored. Returns whether anything changed.
   */
  set(replica: string, seq: number, keys: readonly FollowKey[], nowMs: number): boolean {
    const held = this.replicas.get(replica);
    if (held && seq < held.seq) return false;
    const next = new Set(keys);
    const changed = !held || !sameKeys(held.keys, next);
    if (next.size === 0) this.replicas.delete(replica);
    else this.replicas.set(replica, { keys: next, seq, heardAtMs: nowMs });
    return changed;
  }

  /** Drops sets not renewed within the lease; returns whether any was dropped. */
  expire(nowMs: number): boolean {
    let dropped = false;
    for (const [replica, held] of this.replicas) {
      if (nowMs - held.heardAtMs > this.leaseMs) {
        this.replicas.delete(replica);
        dropped = true;
      }
    }
    return dropped;
  }

  /** Whether any replica follows a channel at all: without one, its records are not even gathered. */
  anyOn(channel: FollowChannel): boolean {
    for (const held of this.replicas.values()) {
      for (const key of held.keys) if (key.startsWith(`${channel}/`)) return true;
    }
    return false;
  }

  /** Each replica that follows some of these records, with the records it follows, in their order. */
  routes<T extends { device: string }>(channel: FollowChannel, records: readonly T[]): Map<string, T[]> {
    const routes = new Map<string, T[]>();
    for (const [replica, held] of this.replicas) {
      const all = held.keys.has(followKey(channel, ALL_DEVICES));
      const wanted = all ? [...records] : records.filter((r) => held.keys.has(followKey(channel, r.device)));
      if (wanted.length > 0) routes.set(replica, wanted);
    }
    return routes;
  }

  /** Devices whose logs some other replica follows. */
  logsDevices(): Set<string> {
    const devices = new Set<string>();
    for (const held of this.replicas.values()) {
      for (const key of held.keys) {
        const device = logsDevice(key);
        if (device !== undefined) devices.add(device);
      }
    }
    return devices;
  }
}

function sameKeys(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const key of a) if (!b.has(key)) return false;
  return true;
}
