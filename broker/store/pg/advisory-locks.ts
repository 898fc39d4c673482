/**
 * Every PostgreSQL advisory lock the hub takes, in one place so no two uses share a key.
 *
 * Keys are the two-int4 form (classid, objid): classid is 'Flot' (or 'Floa' for per-app locks,
 * 'Flos' for per-scope ones) in ASCII, so the hub's locks stay apart from any other application's
 * advisory locks in the same database, and a per-app or per-scope lock (its objid a hash of the
 * name) never meets the hub's own.
 */
export const LOCK_CLASS = 0x466c6f74;

/** One app's revisions are numbered under a transaction-level lock keyed (APP_LOCK_CLASS, hashtext(name)). */
export const APP_LOCK_CLASS = 0x466c6f61; // 'Floa'

/**
 * A set of specs recording a prune scope holds (SCOPE_LOCK_CLASS, hashtext(scope)) before any app
 * lock (broker/store/pg/apps.ts): while it is held no other writer can add an app to the scope, so
 * the apps a prune reads are the apps it deletes.
 */
export const SCOPE_LOCK_CLASS = 0x466c6f73; // 'Flos'

export const ADVISORY_LOCKS = {
  /** Transaction-level, while one replica brings the schema up to date (migrate.ts). */
  migrations: 1,
  /** Session-level, held by the dispatcher's leader for as long as it leads (broker/dispatcher/leader.ts). */
  dispatcherLeader: 2,
  /** Transaction-level, while one replica trims the shared telemetry tables (broker/telemetry/pg/retention.ts). */
  telemetryRetention: 3,
  /** Session-level, held by every hub using the database for as long as it runs (broker/store/pg/hub-presence.ts). */
  hubPresence: 4,
} as const;
