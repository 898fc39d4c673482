/**
 * The first admin's key on every replica of a hub on PostgreSQL. Accounts live in the shared
 * database, so the admin key logs in through any replica; but the key itself exists only where it
 * was written, and the replica that made the account may be gone with its data dir. So the key is
 * kept in `hub_keys` sealed with the secrets key (as the signing key is, hub-keys.ts), and every
 * replica writes it into its own `<dataDir>/admin.key` at start: whoever holds any replica's data
 * dir (and the secrets key) can get in, as on a single hub.
 *
 * Invariants:
 *   - a key is written to a data dir only while it still logs in as the `admin` account (its
 *     hash checked), so a replica never hands out a key that was deleted or replaced;
 *   - the stored copy follows the account: a replica that makes it (a first start, or after the last
 *     admin was deleted) replaces the copy; one whose data dir holds the working key while the copy
 *     is missing or stale (a database moved by `flotilla migrate`) stores it;
 *   - replicas started together on a new database all get the key: the ones that lost the race to make
 *     the account wait a few seconds for the winner's copy;
 *   - a replica that has no key to write (the database holds no copy and its data dir no working key:
 *     the first replica after `flotilla migrate`, started on a fresh data dir) says so in one line,
 *     with where the key can come from, rather than leaving an operator to find no admin.key;
 *   - nothing is logged of the key but the file's path.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writePrivateFile } from '../../../shared/private-file.js';
import type { AccountStore } from '../../auth/accounts.js';
import { ADMIN_KEY_FILE, type AdminCreated, BOOTSTRAP_ADMIN } from '../../auth/bootstrap.js';
import { verifySecret } from '../../auth/hashing.js';
import { SealedDataError, type SecretCipher } from '../secret-cipher.js';
import type { PgQueryable } from './database.js';

export const ADMIN_KEY_NAME = 'admin-key';

/** Associated data of the sealed key, as hub-keys.ts seals its keys: a sealed value copied into another row does not open. */
const AAD = `hub-key:${ADMIN_KEY_NAME}`;

export interface ShareAdminKeyOptions {
  db: PgQueryable;
  cipher: SecretCipher;
  accounts: AccountStore;
  dataDir: string;
  /** What ensureAdmin made at this start, if anything. */
  created: AdminCreated | undefined;
  logger: Logger;
  now: () => Date;
}

/** Stores or writes the admin key so the database and this replica's data dir hold the working one. */
export async function shareAdminKey({ db, cipher, accounts, dataDir, created, logger, now }: ShareAdminKeyOptions): Promise<void> {
  const log = logger.child({ component: 'auth' });
  if (created) return store(db, cipher, created.key, now);
  const path = join(dataDir, ADMIN_KEY_FILE);
  const admin = await accounts.get(BOOTSTRAP_ADMIN);
  const works = async (key: string): Promise<boolean> => admin?.role === 'admin' && (await verifySecret(key, admin.keyHash));
  const local = existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
  const write = (key: string) => {
    if (local === key) return;
    writePrivateFile(path, `${key}\n`, { replace: true });
    log.info({ path, account: BOOTSTRAP_ADMIN }, "wrote the admin account's API key, as the database holds it, to this file");
  };
  const stored = await readStored(db, cipher);
  if (stored.state === 'key' && (await works(stored.key))) return write(stored.key);
  if (local !== undefined && (await works(local))) return store(db, cipher, local, now);
  if (stored.state === 'none') {
    const made = await newAccountsCopy(db, cipher, admin?.createdAt, now);
    if (made !== undefined && (await works(made))) return write(made);
    log.warn(
      { path, account: BOOTSTRAP_ADMIN },
      "no admin key to write to this data dir: the database holds no copy of it (as after flotilla migrate); start one replica on a data dir whose admin.key works (the migrated hub's), and every replica gets it; meanwhile any admin's key logs in",
    );
    return;
  }
  if (stored.state === 'unreadable') {
    log.warn(
      { account: BOOTSTRAP_ADMIN },
      "the admin key stored in the database does not open with this secrets key: this replica's data dir gets no admin.key",
    );
    return;
  }
  log.warn(
    { account: BOOTSTRAP_ADMIN },
    "the admin key stored in the database no longer logs in (the admin account was deleted or replaced): this replica's data dir gets no admin.key; an admin's key logs in on every replica",
  );
}

async function store(db: PgQueryable, cipher: SecretCipher, key: string, now: () => Date): Promise<void> {
  await db.query(
    `INSERT INTO hub_keys (name, value, created_at) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, created_at = EXCLUDED.created_at`,
    [ADMIN_KEY_NAME, cipher.sealText(key, AAD), now().toISOString()],
  );
}

/** How long a replica waits for the copy of an admin account made moments ago by another replica starting beside it. */
const NEW_ADMIN_WAIT_MS = 10_000;

/**
 * The copy of an admin account made moments ago by a replica that started beside this one and won
 * the account's insert (it stores the key right after), waited for; undefined when the account is
 * not new or no copy comes.
 */
async function newAccountsCopy(
  db: PgQueryable,
  cipher: SecretCipher,
  createdAt: string | undefined,
  now: () => Date,
): Promise<string | undefined> {
  if (createdAt === undefined || Math.abs(now().getTime() - Date.parse(createdAt)) >= NEW_ADMIN_WAIT_MS) return undefined;
  // Bounded by this replica's own clock: the account's time is the other replica's.
  const giveUpAt = performance.now() + NEW_ADMIN_WAIT_MS;
  while (performance.now() < giveUpAt) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stored = await readStored(db, cipher);
    if (stored.state === 'key') return stored.key;
    if (stored.state === 'unreadable') return undefined;
  }
  return undefined;
}

/** The stored copy: absent, present but not opened by this secrets key (damaged), or the key. */
type StoredCopy = { state: 'none' } | { state: 'unreadable' } | { state: 'key'; key: string };

async function readStored(db: PgQueryable, cipher: SecretCipher): Promise<StoredCopy> {
  const [row] = await db.query<{ value: Buffer }>('SELECT value FROM hub_keys WHERE name = $1', [ADMIN_KEY_NAME]);
  if (!row) return { state: 'none' };
  try {
    return { state: 'key', key: cipher.openText(row.value, AAD) };
  } catch (err) {
    // The signing key, sealed with the same key, has been opened by now: this copy alone is damaged, and is replaced if the local key works.
    if (err instanceof SealedDataError) return { state: 'unreadable' };
    throw err;
  }
}
