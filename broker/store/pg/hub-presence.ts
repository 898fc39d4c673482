/**
 * Which hubs are using a PostgreSQL database now: each holds an advisory lock
 * (ADVISORY_LOCKS.hubPresence) on a connection of its own, named for the hub
 * (`application_name`), for as long as it runs. A replica (`--redis`) holds
 * it shared, beside the other replicas; a hub without `--redis` holds it
 * alone. A hub that cannot take it is refused at start, with the holders
 * named: two hubs without `--redis` on one database would each run a broker
 * of their own, devices split between them would not see each other's
 * messages, and each would plan the fleet as if it were alone; a replica next
 * to such a hub likewise.
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
import { configError } from './connect.js';
import { type PgQueryable, pgClientConfig } from './database.js';
import { DatabaseConfigError } from './errors.js';
import type { PostgresTarget } from './url.js';

/** What a hub's presence session is named; the hub's name follows. */
const APPLICATION_PREFIX = 'flotilla-hub ';
/** PostgreSQL keeps 63 bytes of application_name. */
const NAME_MAX = 63 - APPLICATION_PREFIX.length;

/** How long the server waits on a silent client before it ends the session (and frees the lock). */
const KEEPALIVE = 'SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3; SET tcp_user_timeout = 8000';

/**
 * A name for this hub process, unique among the hubs on one database: host, pid and a random part
 * (a pid is reused across restarts and hosts), short enough for application_name. A replica's
 * broker id too, so no ':' in it: aedes-persistence-redis reads a broker id out of its Redis keys
 * (`will:<broker>:<client>`, QoS 2 releases) up to the first ':'.
 */
export function hubProcessName(host = hostname(), pid = process.pid): string {
  const tail = `-${pid}-${randomBytes(3).toString('hex')}`;
  return `${host.slice(0, NAME_MAX - tail.length)}${tail}`;
}

/** A replica shares the database with other replicas; a hub without --redis shares it with nobody. */
export type HubPresenceMode = 'replica' | 'alone';

export interface HubPresenceOptions {
  target: PostgresTarget;
  logger: Logger;
  /** This hub's name (hubProcessName). */
  name: string;
  mode: HubPresenceMode;
  /** How often a lost session is opened again. */
  retryMs?: number;
}

export class HubPresence {
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lostAt: number | undefined;
  private lastRefusal: string | undefined;
  private readonly log: Logger;
  private readonly retryMs: number;

  private constructor(private readonly options: HubPresenceOptions) {
    this.log = options.logger.child({ component: 'hub-presence', hub: options.name, database: options.target.description });
    this.retryMs = options.retryMs ?? 1_000;
  }

  /** Opens the hub's presence session and takes the lock; a DatabaseConfigError ('in_use') naming the holders when another hub's mode excludes this one's. */
  static async take(options: HubPresenceOptions): Promise<HubPresence> {
    const presence = new HubPresence(options);
    let refused: DatabaseConfigError | undefined;
    try {
      refused = await presence.hold();
    } catch (err) {
      throw configError(options.target, err);
    }
    if (refused) throw refused;
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

  /** Takes the lock on a new session: undefined once held, or why it cannot be. */
  private async hold(): Promise<DatabaseConfigError | undefined> {
    const client = new pg.Client(pgClientConfig(this.options.target, { applicationName: `${APPLICATION_PREFIX}${this.options.name}` }));
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query(KEEPALIVE);
      // A holder seen in the lock's way may end before it is looked up: tried again a few times, then refused as the holders were.
      for (let attempt = 1; ; attempt++) {
        const take = this.options.mode === 'replica' ? 'pg_try_advisory_lock_shared' : 'pg_try_advisory_lock';
        const { rows } = await client.query<{ got: boolean }>(`SELECT ${take}($1, $2) AS got`, [LOCK_CLASS, ADVISORY_LOCKS.hubPresence]);
        if (rows[0]?.got) break;
        const holders = await hubsIn(queryable(client));
        if (holders.length > 0 || attempt === 3) {
          await client.end().catch(() => undefined);
          return refusal(this.options, holders);
        }
      }
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    client.on('end', () => this.lost(client));
    this.client = client;
    return undefined;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    this.lostAt ??= Date.now();
    // Info, not a warning: a database outage is warned of once by the pool (database.ts), and a place taken by another hub meanwhile is an error of its own.
    this.log.info("lost the session that holds this hub's place in the database; opening it again");
    this.retry();
  }

  private retry(): void {
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      try {
        const refused = await this.hold();
        if (refused) {
          // Another hub took the database while this one's session was away: said again whenever the hubs in the way change.
          if (refused.message !== this.lastRefusal)
            this.log.error({ err: refused.message }, "cannot take this hub's place in the database again");
          this.lastRefusal = refused.message;
          return this.retry();
        }
        this.lastRefusal = undefined;
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

/** The client as the pool's query interface. */
function queryable(client: pg.Client): PgQueryable {
  return { query: async (sql, params) => (await client.query(sql, params)).rows };
}

/** A hub holding its place in the database. */
interface Holder {
  name: string;
  alone: boolean;
  since: string;
  from: string | null;
}

/** The hubs holding their place in the database, oldest first. */
async function hubsIn(db: PgQueryable): Promise<Holder[]> {
  return db.query<{ name: string; alone: boolean; since: string; from: string | null }>(
    `SELECT substr(a.application_name, $3) AS name, l.mode = 'ExclusiveLock' AS alone,
            to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS since, host(a.client_addr) AS "from"
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 2 AND l.granted
        AND starts_with(a.application_name, $4)
      ORDER BY a.backend_start`,
    [LOCK_CLASS, ADVISORY_LOCKS.hubPresence, APPLICATION_PREFIX.length + 1, APPLICATION_PREFIX],
  );
}

/** Why this hub may not use the database beside the holders: what is in the way, where, and what to do. */
function refusal({ target, mode }: HubPresenceOptions, holders: readonly Holder[]): DatabaseConfigError {
  const where = `database "${target.database}" on PostgreSQL at ${target.where}`;
  const named = (hs: readonly Holder[]) =>
    hs.map((h) => `${h.name} (since ${h.since}${h.from ? `, from ${h.from}` : ''})`).join(', ') || 'a hub that has just stopped';
  const alone = holders.filter((h) => h.alone);
  const split =
    "each would run its own MQTT broker, devices split between them would not see each other's messages, and each would plan the fleet alone";
  if (mode === 'alone' && alone.length > 0) {
    return new DatabaseConfigError(
      'in_use',
      `another hub without --redis uses ${where}: ${named(alone)}. Two hubs on one database without --redis cannot work (${split}); stop that hub, or run every hub as a replica with the same --redis`,
    );
  }
  if (mode === 'alone') {
    return new DatabaseConfigError(
      'in_use',
      `hub replicas with --redis use ${where}: ${named(holders)}. A hub without --redis cannot join them (${split}); start it with the --redis URL they use`,
    );
  }
  return new DatabaseConfigError(
    'in_use',
    `a hub without --redis uses ${where}: ${named(alone)}. A replica cannot join it (${split}); stop that hub and start it again as a replica with --redis`,
  );
}

/** The names of the hubs holding their place in the database now. */
export async function presentHubs(db: PgQueryable): Promise<Set<string>> {
  return new Set((await hubsIn(db)).map((h) => h.name));
}
