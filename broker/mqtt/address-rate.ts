/**
 * New connections per remote address: one token bucket per address, so a
 * single host hammering CONNECT (a bug in a loop, a password guesser) takes
 * at most its own share of the global admission rate (admission.ts) rather
 * than all of it.
 *
 * Sized for carrier NAT: a fleet on cellular shares a handful of public IPv4
 * addresses, hundreds of devices behind each, and after a hub restart they
 * all come back at once. The default (100/s, burst 200; HUB_DEFAULTS) lets a
 * NAT pool of 200 devices in at once and a bigger one within seconds, while
 * one address alone can never take more than a fifth of the default global
 * 500/s.
 *
 * Addresses: an IPv4-mapped IPv6 address counts as its IPv4 address, and an
 * IPv6 address by its /64 (a host is given a whole /64 and can use any
 * address in it, so per-address buckets would cost it nothing to evade).
 *
 * Memory is bounded: a bucket that has refilled to its burst is the same as
 * no bucket, so it is forgotten (swept at most every `burst / rate` seconds),
 * and the map never holds more than `maxAddresses` buckets (the oldest go
 * first; forgetting one only ever lets that address in sooner).
 */
import { isIPv6 } from 'node:net';
import { TokenBucket } from './token-bucket.js';

export interface AddressRateOptions {
  /** New connections per second per address (> 0). */
  rate: number;
  /** Connections one address may open at once after a quiet spell (default 2 × rate). */
  burst?: number;
  /** Most addresses tracked at once (default 65,536, about 10 MiB). */
  maxAddresses?: number;
  /** Milliseconds (tests inject a clock). */
  now?: () => number;
}

export class AddressRate {
  readonly rate: number;
  readonly burst: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, TokenBucket>();
  /** A bucket untouched this long is full again. */
  private readonly refillMs: number;
  private lastSweep: number;

  constructor(options: AddressRateOptions) {
    this.rate = options.rate;
    this.burst = options.burst ?? 2 * options.rate;
    this.maxAddresses = options.maxAddresses ?? 65_536;
    this.now = options.now ?? (() => performance.now());
    this.refillMs = Math.ceil((this.burst * 1000) / this.rate);
    this.lastSweep = this.now();
    // Validates rate and burst once, at start, rather than at the first connection.
    new TokenBucket(this.rate, this.burst, this.now);
  }

  /** Takes a token for a connection from `address`; false: over its rate, refuse. */
  take(address: string): boolean {
    this.sweep();
    const key = addressKey(address);
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxAddresses) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      bucket = new TokenBucket(this.rate, this.burst, this.now);
      this.buckets.set(key, bucket);
    }
    return bucket.take() !== undefined;
  }

  /** Addresses tracked now (for tests and logs). */
  get size(): number {
    return this.buckets.size;
  }

  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < this.refillMs) return;
    this.lastSweep = now;
    for (const [key, bucket] of this.buckets) {
      if (bucket.available() >= this.burst) this.buckets.delete(key);
    }
  }
}

/** The bucket an address belongs to: IPv4 as is (also when IPv4-mapped), IPv6 by its /64. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, as hex without leading zeros. */
function expandIPv6(address: string): string[] {
  const withoutZone = address.split('%')[0] ?? address;
  const [head = '', tail] = withoutZone.split('::') as [string, string | undefined];
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  // An embedded IPv4 tail (::1.2.3.4) is two groups.
  const last = right.length > 0 ? right : left;
  if (last.length > 0 && last[last.length - 1]?.includes('.')) last.splice(-1, 1, '0', '0');
  const missing = 8 - left.length - right.length;
  return [...left, ...Array.from({ length: Math.max(0, missing) }, () => '0'), ...right].map((g) => Number.parseInt(g, 16).toString(16));
}
