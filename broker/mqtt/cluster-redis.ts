/**
 * The Redis connections of a clustered broker, built from one URL: the
 * persistence's, and the shared emitter's publishing and subscribing ones.
 *
 * - At start Redis is probed once, with no retries: an unreachable server or
 *   a refused login is one error naming the URL (password redacted), not a
 *   hub that starts and then waits forever.
 * - While running, ioredis reconnects on its own and queues commands until
 *   Redis is back (no retry limit: a publish waits, it is not lost). It emits
 *   an error at every failed attempt; here an outage is one warning when the
 *   first connection drops and one line when all three are ready again,
 *   saying how long the broker waited.
 * - Redis pub/sub delivers to whoever is subscribed at that moment: a
 *   message published through a connection that is back before the
 *   subscribing one has renewed its subscriptions reaches nobody. So this
 *   replica's publishes wait (`whenListening`) until its own subscribing
 *   connection is ready and has answered a PING sent after its renewed
 *   SUBSCRIBEs. Other replicas reconnect on their own schedule: a message
 *   published while one of them is still away is not delivered to its
 *   clients live (a persistent session still finds it queued).
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/** The URL with its password (and a username's password) replaced, for logs and errors. */
export function redactedRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable Redis URL)';
  }
}

/** The database number a `redis://host:port/N` URL selects (0 without a path). */
export function redisDatabase(url: string): number {
  const path = new URL(url).pathname.replace(/^\//, '');
  return path === '' ? 0 : Number(path);
}

export class RedisUnreachableError extends Error {
  readonly code = 'REDIS_UNREACHABLE';
  constructor(
    readonly url: string,
    reason: string,
  ) {
    super(`Redis at ${url} (--redis) ${reason}`);
    this.name = 'RedisUnreachableError';
  }
}

export function isRedisUnreachable(err: unknown): err is RedisUnreachableError {
  return err instanceof RedisUnreachableError;
}

/**
 * Why the start-up probe failed, from what Redis or the socket said. A refused login says how to
 * write a password with the URL's own separators in it: a raw `@` or `:` there parses as another
 * password than the one meant, and Redis answers only WRONGPASS.
 */
export function probeFailure(message: string): string {
  if (!/WRONGPASS|NOAUTH|invalid password|invalid username/i.test(message)) return `is unreachable: ${message}`;
  return `refused the login: ${message} (if the password is right, percent-encode @ / : # ? in it: %40 %2F %3A %23 %3F)`;
}

/** How long the start-up probe waits for Redis to answer. */
const PROBE_TIMEOUT_MS = 5_000;

/** Connects once, without retries, and PINGs; throws RedisUnreachableError saying why not. */
export async function probeRedis(url: string): Promise<void> {
  const shown = redactedRedisUrl(url);
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  // The connection's own error says why (ECONNREFUSED, a TLS failure); connect() only rejects with "Connection is closed".
  let cause: Error | undefined;
  probe.on('error', (err: Error) => {
    cause ??= err;
  });
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    throw new RedisUnreachableError(shown, probeFailure((cause ?? (err as Error)).message));
  } finally {
    probe.disconnect();
  }
}

export interface RedisConnections {
  /** Keys of sessions, subscriptions, retained messages and wills (aedes-persistence-redis). */
  persistence: Redis;
  /** The shared emitter's PUBLISH connection. */
  pub: Redis;
  /** The shared emitter's SUBSCRIBE connection (a subscribed connection runs no other command). */
  sub: Redis;
  /** True while every connection is ready. */
  readonly up: boolean;
  /** Runs `publish` now if the subscribing connection is listening, else once it is again, in order. */
  whenListening(publish: () => void): void;
  /** From now on a dropped connection is the broker closing, not an outage. */
  closing(): void;
  /**
   * Resolves once Redis has answered every persistence command issued so far (or failed them).
   * Pipelined commands wait for the loop's next turn before they are written, and a disconnect in
   * between fails them: some the persistence does not await (a will's list entries), and their
   * failure would be an unhandled rejection. (The emitter's connections are closed by the broker.)
   */
  drained(): Promise<void>;
  disconnect(): void;
}

export interface ConnectionOptions {
  url: string;
  /** Prefix of every key the persistence writes. */
  keyPrefix: string;
  logger: Logger;
}

/** The three long-lived connections, each reconnecting on its own, with one outage log for all three. */
export function openRedisConnections({ url, keyPrefix, logger }: ConnectionOptions): RedisConnections {
  const shown = redactedRedisUrl(url);
  const log = logger.child({ component: 'redis' });
  const common: RedisOptions = {
    // Capped backoff: back within 2 s of Redis returning.
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    // A command waits through an outage (ioredis' offline queue) instead of failing after 20 attempts:
    // the PUBACK of a device's message waits with it, so the device keeps it until Redis has it.
    maxRetriesPerRequest: null,
  };
  // Auto-pipelining: the commands issued in one turn of the event loop go out in one write. A fan-out
  // makes several persistence commands per QoS 1 delivery (queue, message id, PUBACK) and a PUBLISH per
  // message, for thousands of devices at once: one syscall and one round trip each would cost more than Redis.
  const persistence = new Redis(url, { ...common, keyPrefix, enableAutoPipelining: true });
  const pub = new Redis(url, { ...common, enableAutoPipelining: true });
  const sub = new Redis(url, common);
  const all = [persistence, pub, sub];
  let lostAt: number | undefined;
  let closing = false;
  let listening = false;
  const waiting: (() => void)[] = [];
  sub.on('close', () => {
    listening = false;
  });
  sub.on('ready', () => {
    // Commands on one connection are answered in order: the PONG comes after the renewed subscriptions.
    sub.ping().then(
      () => {
        listening = true;
        for (let publish = waiting.shift(); publish; publish = waiting.shift()) publish();
      },
      () => {},
    );
  });

  const onError = (err: Error) => {
    if (closing || lostAt !== undefined) return;
    lostAt = Date.now();
    log.warn(
      { redis: shown, err: err.message },
      'Redis lost: MQTT deliveries between replicas, retained messages and sessions wait for it',
    );
  };
  const onReady = () => {
    if (lostAt === undefined || !all.every((conn) => conn.status === 'ready')) return;
    log.info({ redis: shown, waitedMs: Date.now() - lostAt }, 'Redis is back: delivery between replicas resumed');
    lostAt = undefined;
  };
  for (const conn of all) {
    conn.on('error', onError);
    // 'close' without an error (a server that shut down cleanly) is an outage too.
    conn.on('close', () => {
      if (!closing) onError(new Error('connection closed'));
    });
    conn.on('ready', onReady);
  }
  return {
    persistence,
    pub,
    sub,
    get up() {
      return all.every((conn) => conn.status === 'ready');
    },
    whenListening(publish) {
      if (listening && waiting.length === 0) publish();
      else waiting.push(publish);
    },
    closing() {
      closing = true;
    },
    async drained() {
      // Commands on one connection are answered in order: the PONG comes after what was issued before it.
      await persistence.ping().catch(() => {});
    },
    disconnect() {
      closing = true;
      for (const conn of all) conn.disconnect();
      // What waited for Redis goes to the emitter now, which fails it on the closed connection.
      listening = true;
      for (let publish = waiting.shift(); publish; publish = waiting.shift()) publish();
    },
  };
}
