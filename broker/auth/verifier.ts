/**
 * Checks presented secrets against stored scrypt hashes without letting a
 * reconnect storm swamp the hub.
 *
 * What bench/connect-storm.ts measured with the plain approach (every login
 * hashed at once on libuv's four threads, BENCHMARKS.md "Reconnect storm with
 * credentials"): 2,000 devices after a restart queued their hashes for up to
 * 16 s, past the agent's 10 s connect timeout, so most gave up, retried and
 * were hashed again; the hashing threads also took the broker's event loop's
 * core (stalls 2–3× longer). So:
 *
 * - at most `concurrency` hashes run at once (one core short of the
 *   machine's, so the broker keeps one);
 * - a device that retries while its first check still runs shares it;
 * - when more than `maxWaiting` checks wait, a new one is refused at once as
 *   `busy` (CONNACK 3, "server unavailable"): the device backs off and
 *   retries, rather than waiting out its timeout and retrying anyway;
 * - a success is remembered (VerifiedCache), so the retry costs nothing.
 */
import { availableParallelism } from 'node:os';
import { sha256Hex, VerifiedCache, verifySecret } from './hashing.js';

export type Verdict = boolean | 'busy';

/** ~5 ms per hash on a Pi-class core: 512 waiting is under 3 s of work for one thread. */
export const DEFAULT_MAX_WAITING = 512;

export class SecretVerifier {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly inFlight = new Map<string, Promise<boolean>>();

  constructor(
    private readonly cache: VerifiedCache = new VerifiedCache(),
    readonly concurrency = Math.max(1, availableParallelism() - 1),
    readonly maxWaiting = DEFAULT_MAX_WAITING,
  ) {}

  /** Whether `secret` matches `stored` for `who` ("device:ID", "account:NAME"), or `busy` when too many checks wait. */
  verify(who: string, secret: string, stored: string): Promise<Verdict> {
    if (this.cache.has(who, secret, stored)) return Promise.resolve(true);
    // Hashed, as the cache's keys are: no presented secret is kept as a map key.
    const key = sha256Hex(`${who}\u0000${stored}\u0000${secret}`);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    if (this.running >= this.concurrency && this.waiting.length >= this.maxWaiting) return Promise.resolve('busy');
    const check = this.slot()
      .then(() => verifySecret(secret, stored))
      .then((ok) => {
        if (ok) this.cache.add(who, secret, stored);
        return ok;
      })
      .finally(() => {
        this.inFlight.delete(key);
        this.release();
      });
    this.inFlight.set(key, check);
    return check;
  }

  /** Checks waiting for a thread (not counting those running). */
  get queued(): number {
    return this.waiting.length;
  }

  private slot(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    // The slot is handed over by release(), which does not decrement `running`.
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
