/**
 * Which hubs are using a PostgreSQL database now: each holds an advisory lock
 * (ADVISORY_LOCKS.hubPresence) on a connection of its own, named for the hub
 * (`application_name`), for as long as it runs. A replica (`--redis`) holds
 * it shared, beside the other replicas.
 *
 * The server frees the lock when the session ends, however it ends: a
 * killed process's socket is closed by its kernel at once, and a host that
 * vanished is given up after a few keepalive probes (set on the session), so
 * a crashed hub never holds it for long. What a live hub's name shows in
 * pg_stat_activity is what the others read to tell which replicas are gone.
 *
 * A session lost while the hub runs (PostgreSQL restarted, a network blip) is
 * opened and the lock taken again, every `retryMs`, until the hub stops.
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import type { Logger } from 'pino';
import { ADVISORY_LOCKS, LOCK_CLASS } from './advisory-locks.js';
import { type PgQueryable, pgClientConfig } from './database.js';
import type { PostgresTarget } from './url.js';

/** What a hub's presence session is named; the hub's name follows. */
const APPLICATION_PREFIX = 'flotilla-hub ';
/** PostgreSQL keeps 63 bytes of application_name. */
const NAME_MAX = 63 - APPLICATION_PREFIX.length;

/** How long the server waits on a silent client before it ends the session (and frees the lock). */
const KEEPALIVE = 'SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3; SET tcp_user_timeout = 8000';

/**
 * A name for this hub process, unique among the hubs on one database: host, pid and a random part
 * (a pid is reused across restarts and hosts), short enough for application_name.
 */
export function hubProcessName(host = hostname(), pid = process.pid): string {
  const tail = `:${pid}:${randomBytes(3).toString('hex')}`;
  return `${host.slice(0, NAME_MAX - tail.length)}${tail}`;
}

export interface HubPresenceOptions {
  target: PostgresTarget;
  logger: Logger;
  /** This hub's name (hubProcessName). */
  name: string;
  /** How often a lost session is opened again. */
  retryMs?: number;
}

export class HubPresence {
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lostAt: number | undefined;
  private readonly log: Logger;
  private readonly retryMs: number;

  private constructor(private readonly options: HubPresenceOptions) {
    this.log = options.logger.child({ component: 'hub-presence', replica: options.name, database: options.target.description });
    this.retryMs = options.retryMs ?? 1_000;
  }

  /** Opens the hub's presence session and takes the lock. */
  static async take(options: HubPresenceOptions): Promise<HubPresence> {
    const presence = new HubPresence(options);
    await presence.hold();
    presence.log.info("holding this hub's place in the database");
    return presence;
  }

  get name(): string {
    return this.options.name;
  }

  /** Ends the session, which frees the lock. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    await client.end().catch(() => undefined);
  }

  private async hold(): Promise<void> {
    const client = new pg.Client(pgClientConfig(this.options.target, { applicationName: `${APPLICATION_PREFIX}${this.options.name}` }));
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query(KEEPALIVE);
      await client.query('SELECT pg_advisory_lock_shared($1, $2)', [LOCK_CLASS, ADVISORY_LOCKS.hubPresence]);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    client.on('end', () => this.lost(client));
    this.client = client;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    this.lostAt ??= Date.now();
    this.log.warn("lost the session that holds this hub's place in the database; opening it again");
    this.retry();
  }

  private retry(): void {
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      try {
        await this.hold();
        if (this.stopped) return void (await this.close());
        this.log.info({ waitedMs: Date.now() - (this.lostAt ?? Date.now()) }, "holding this hub's place in the database again");
        this.lostAt = undefined;
      } catch {
        this.retry();
      }
    }, this.retryMs);
    this.timer.unref();
  }
}

/** The names of the hubs holding their place in the database now. */
export async function presentHubs(db: PgQueryable): Promise<Set<string>> {
  const rows = await db.query<{ name: string }>(
    `SELECT substr(a.application_name, $3) AS name
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 2 AND l.granted
        AND starts_with(a.application_name, $4)`,
    [LOCK_CLASS, ADVISORY_LOCKS.hubPresence, APPLICATION_PREFIX.length + 1, APPLICATION_PREFIX],
  );
  return new Set(rows.map((r) => r.name));
}
