/**
 * Holds one of the hub's PostgreSQL advisory locks (broker/store/pg/advisory-locks.ts) in an open
 * transaction, as another replica in the middle of the same work would: the tests of "a second
 * replica finds it taken and leaves the work" take it with this, then let it go.
 */
import { ADVISORY_LOCKS, LOCK_CLASS } from '../../broker/store/pg/advisory-locks.js';
import type { PgDatabase } from '../../broker/store/pg/database.js';

export interface HeldLock {
  /** Ends the holding transaction; resolves once it has committed. */
  release(): Promise<void>;
}

/** Resolves once `db` holds the lock, in a transaction that stays open until `release()`. */
export async function holdAdvisoryLock(db: PgDatabase, lock: keyof typeof ADVISORY_LOCKS): Promise<HeldLock> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holder = db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, ADVISORY_LOCKS[lock]]);
    locked();
    await released;
  });
  // A holder that fails before it locks must fail the test, not leave it waiting.
  await Promise.race([isLocked, holder]);
  return {
    release: async () => {
      release();
      await holder;
    },
  };
}
