/**
 * Which replica leads the dispatcher (runs rollouts and the fleet-wide sync): the one whose
 * PostgreSQL session holds a session-level advisory lock. Every replica runs a LeaderLease; at most
 * one holds the lock, and the server frees it when that session ends, however it ends.
 *
 * The lock lives on a dedicated connection, never a pooled one: a pool hands its connections to
 * other work and closes idle ones, and the lock would go with them.
 *
 * Invariants:
 * - A replica leads only while its session answered a check within `checkTimeoutMs`, checked every
 *   `checkIntervalMs`; a check that fails or times out, or any error or close on the connection,
 *   ends leadership at once, before anything else is tried.
 * - The server frees a partitioned leader's lock only once it has given up on the session, and
 *   the session asks it to give up only after `checkIntervalMs + checkTimeoutMs + 1 s` of silence
 *   plus three keepalive probes a second apart (tcp_user_timeout likewise, for an answer left
 *   unacknowledged): longer than the `checkIntervalMs + checkTimeoutMs` the old leader takes to step
 *   down, so a partitioned leader has stopped before another replica can take over.
 * - A replica that takes the lock waits `takeoverDelayMs` (default `checkIntervalMs +
 *   checkTimeoutMs`), still checking its session, before it leads: when the old leader's session
 *   was ended by the server (terminated, or the server restarted) rather than by a partition, the
 *   old leader learns it from its socket at once, and at the latest at its next check.
 * - Leadership is a promise about timing, not a fence: a leader whose process stalls for longer
 *   than these margins can act after another took over. Work that must not be done twice (a
 *   rollout step) also needs a conditional write in the store.
 * - stop() ends leadership ('lost' with reason 'stopped') and closes the session, which frees the
 *   lock for the others at once.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from 'pino';
import { ADVISORY_LOCKS, LOCK_CLASS } from '../store/pg/advisory-locks.js';
import { pgClientConfig } from '../store/pg/database.js';
import type { PostgresTarget } from '../store/pg/url.js';

export interface LeaderLeaseOptions {
  target: PostgresTarget;
  logger: Logger;
  /** Names this replica in the logs and in pg_stat_activity (`flotilla-leader <replica>`). */
  replica?: string;
  /** How often the session is checked, and the lock tried for while not leading. */
  checkIntervalMs?: number;
  /** A check (or a connect) with no answer in this long ends leadership. */
  checkTimeoutMs?: number;
  /** How long a replica holds the lock before it leads. */
  takeoverDelayMs?: number;
  /** The advisory lock's object id under LOCK_CLASS (tests give each case its own). */
  lockId?: number;
}

interface LeaderEvents {
  gained: [];
  lost: [reason: string];
}

/** What the server is told to wait before it gives up on this session (keepalive idle + probes, and unacknowledged data). */
function serverGiveUp(minMs: number): {
  keepaliveIdleS: number;
  keepaliveIntervalS: number;
  keepaliveCount: number;
  userTimeoutMs: number;
} {
  const keepaliveIntervalS = 1;
  const keepaliveCount = 3;
  const keepaliveIdleS = Math.max(1, Math.ceil(minMs / 1000));
  return {
    keepaliveIdleS,
    keepaliveIntervalS,
    keepaliveCount,
    userTimeoutMs: (keepaliveIdleS + keepaliveIntervalS * keepaliveCount) * 1000,
  };
}

export class LeaderLease extends EventEmitter<LeaderEvents> {
  private readonly logger: Logger;
  private readonly checkIntervalMs: number;
  private readonly checkTimeoutMs: number;
  private readonly takeoverDelayMs: number;
  private readonly lockId: number;
  private client: pg.Client | undefined;
  private leading = false;
  /** When this replica took the lock and is waiting out the takeover delay; undefined otherwise. */
  private heldSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private unreachableSince: number | undefined;

  constructor(private readonly options: LeaderLeaseOptions) {
    super();
    this.checkIntervalMs = options.checkIntervalMs ?? 1_000;
    this.checkTimeoutMs = options.checkTimeoutMs ?? 2_000;
    this.takeoverDelayMs = options.takeoverDelayMs ?? this.checkIntervalMs + this.checkTimeoutMs;
    this.lockId = options.lockId ?? ADVISORY_LOCKS.dispatcherLeader;
    this.logger = options.logger.child({ component: 'leader', replica: options.replica, database: options.target.description });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    this.lose('stopped');
    await this.dropConnection();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
        this.schedule(this.checkIntervalMs);
      });
    }, delayMs);
  }

  private async tick(): Promise<void> {
    try {
      const client = this.client ?? (await this.connect());
      if (this.stopped || client !== this.client) return;
      if (this.leading || this.heldSince !== undefined) {
        if (!(await this.holdsLock(client))) throw new Error('the session no longer holds the lock');
        if (client !== this.client) return;
        if (!this.leading && Date.now() - this.heldSince! >= this.takeoverDelayMs) this.gain();
      } else if (await this.tryLock(client)) {
        if (client !== this.client) return;
        this.heldSince = Date.now();
        if (this.takeoverDelayMs <= 0) this.gain();
      }
    } catch (err) {
      // Whatever failed, this session can no longer be trusted with the lock.
      this.lose(`check failed: ${(err as Error).message}`);
      await this.dropConnection();
    }
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client(
      pgClientConfig(this.options.target, {
        connectTimeoutMs: this.checkTimeoutMs,
        applicationName: this.options.replica ? `flotilla-leader ${this.options.replica}` : 'flotilla-leader',
      }),
    );
    const onGone = (err?: Error) => {
      if (this.client !== client) return;
      this.lose(`connection lost: ${err?.message ?? 'closed by the server'}`);
      void this.dropConnection();
    };
    client.on('error', onGone);
    client.on('end', () => onGone());
    try {
      await client.connect();
      const giveUp = serverGiveUp(this.checkIntervalMs + this.checkTimeoutMs + 1_000);
      await this.timed(
        client.query(
          `SET tcp_keepalives_idle = ${giveUp.keepaliveIdleS}; SET tcp_keepalives_interval = ${giveUp.keepaliveIntervalS}; ` +
            `SET tcp_keepalives_count = ${giveUp.keepaliveCount}; SET tcp_user_timeout = ${giveUp.userTimeoutMs}`,
        ),
      );
    } catch (err) {
      client.removeAllListeners('end');
      client.on('error', () => undefined);
      destroy(client);
      if (this.unreachableSince === undefined) {
        this.unreachableSince = Date.now();
        this.logger.warn({ err: (err as Error).message }, 'cannot reach PostgreSQL to contend for leadership; retrying every check');
      }
      throw err;
    }
    if (this.unreachableSince !== undefined) {
      this.logger.info({ waitedMs: Date.now() - this.unreachableSince }, 'PostgreSQL reachable again; contending for leadership');
      this.unreachableSince = undefined;
    }
    this.client = client;
    return client;
  }

  private async tryLock(client: pg.Client): Promise<boolean> {
    const { rows } = await this.timed(
      client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS got', [LOCK_CLASS, this.lockId]),
    );
    return rows[0]?.got === true;
  }

  private async holdsLock(client: pg.Client): Promise<boolean> {
    const { rows } = await this.timed(
      client.query<{ held: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
           AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2 AND granted) AS held`,
        [LOCK_CLASS, this.lockId],
      ),
    );
    return rows[0]?.held === true;
  }

  /** `query`, or a rejection once checkTimeoutMs has passed without its answer. */
  private async timed<T>(query: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.checkTimeoutMs} ms`)), this.checkTimeoutMs);
    });
    query.catch(() => undefined); // it may settle after the timeout, when nobody awaits it
    try {
      return await Promise.race([query, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private gain(): void {
    if (this.leading || this.stopped) return;
    this.leading = true;
    this.heldSince = undefined;
    this.logger.info('leading the dispatcher');
    this.emit('gained');
  }

  private lose(reason: string): void {
    this.heldSince = undefined;
    if (!this.leading) return;
    this.leading = false;
    if (reason === 'stopped') this.logger.info({ reason }, 'no longer leading the dispatcher');
    else this.logger.warn({ reason }, 'no longer leading the dispatcher');
    this.emit('lost', reason);
  }

  /** Closes the session (which frees the lock on the server), without waiting on a dead socket. */
  private async dropConnection(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.end().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          destroy(client);
          resolve();
        }, 1_000);
      }),
    ]);
    clearTimeout(timer);
  }
}

/** Closes the client's socket now: end() waits for the server's goodbye, which a dead link never brings. */
function destroy(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
