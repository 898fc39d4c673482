/**
 * Hashes of the hub's credentials: API keys and device secrets (scrypt),
 * registration tokens (SHA-256).
 *
 * Why scrypt with N = 2^10 (about 4 ms per hash on the 2-core test machine,
 * against 16 ms for 2^12 and 63 ms for 2^14, the "interactive" value):
 * every secret hashed here is 32 random bytes, made by the hub, so a stolen
 * database cannot be attacked by guessing however cheap the hash is; what
 * matters is that the hash alone does not log in. The cost that does matter
 * is a reconnect storm after a hub restart: 2,000 devices verify their
 * secrets at once, measured at 10.8 s wall for 2,000 concurrent verifications
 * at 2^10 on the libuv pool of this machine (2^14 would take minutes). The
 * cache below spares the reconnects that follow. The parameters travel with
 * each hash, so they can be raised later without invalidating stored ones.
 *
 * Verification runs on the thread pool (async `scrypt`), never blocking the
 * broker; `hashSecretSync` is only for rare admin calls inside synchronous
 * API methods (creating a service account).
 */
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const N = 1024;
const R = 8;
const P = 1;
const KEY_LEN = 32;
const PREFIX = 'scrypt';

export function hashSecretSync(secret: string): string {
  const salt = randomBytes(16);
  return format(N, R, P, salt, scryptSync(secret, salt, KEY_LEN, { N, r: R, p: P }));
}

export function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, KEY_LEN, { N, r: R, p: P }, (err, key) => (err ? reject(err) : resolve(format(N, R, P, salt, key)))),
  );
}

/** True when `secret` hashes to `stored`; false for a malformed `stored` too. Constant-time compare. */
export function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (!parsed) return Promise.resolve(false);
  const { n, r, p, salt, hash } = parsed;
  return new Promise((resolve) =>
    scrypt(secret, salt, hash.length, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) =>
      resolve(!err && timingSafeEqual(key, hash)),
    ),
  );
}

/** Registration tokens are 24 random bytes: a fast hash is as safe as a slow one, and lets the token be looked up by it. */
export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}

/** A fresh random value, base64url (32 bytes → 43 characters). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

function format(n: number, r: number, p: number, salt: Buffer, hash: Buffer): string {
  return [PREFIX, n, r, p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

function parse(stored: string): { n: number; r: number; p: number; salt: Buffer; hash: Buffer } | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== PREFIX) return undefined;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![n, r, p].every((v) => Number.isInteger(v) && v > 0) || n > 2 ** 20) return undefined;
  const hash = Buffer.from(parts[5]!, 'base64url');
  if (hash.length < 16) return undefined;
  return { n, r, p, salt: Buffer.from(parts[4]!, 'base64url'), hash };
}

/**
 * Successful verifications remembered for a while, so a device that
 * reconnects (a flapping link, a storm) is not hashed again. Keyed by a
 * SHA-256 of who and what was presented, so no secret sits in memory; a hit
 * counts only while the stored hash is still the one it was checked against
 * (a new secret, a deleted account or revoked device is checked by the
 * caller before the cache is asked).
 */
export class VerifiedCache {
  private readonly entries = new Map<string, { stored: string; expires: number }>();

  constructor(
    private readonly ttlMs = 10 * 60_000,
    private readonly maxEntries = 20_000,
    private readonly now: () => number = Date.now,
  ) {}

  has(who: string, secret: string, stored: string): boolean {
    const key = cacheKey(who, secret);
    const entry = this.entries.get(key);
    if (!entry) return false;
    if (entry.expires <= this.now() || entry.stored !== stored) {
      this.entries.delete(key);
      return false;
    }
    return true;
  }

  add(who: string, secret: string, stored: string): void {
    // Oldest first out: a Map iterates in insertion order.
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(cacheKey(who, secret), { stored, expires: this.now() + this.ttlMs });
  }
}

function cacheKey(who: string, secret: string): string {
  return sha256Hex(`${who}\u0000${secret}`);
}
