/**
 * The first admin: on a hub with no admin account, an `admin` account is
 * created and its API key written to `<dataDir>/admin.key` (mode 0600, the
 * owner only), never to the log. A hub whose last admin was deleted gets one
 * again at the next start, so whoever holds the data dir can always get back in.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writePrivateFile } from '../../shared/private-file.js';
import type { AccountStore } from './accounts.js';

export const ADMIN_KEY_FILE = 'admin.key';
export const BOOTSTRAP_ADMIN = 'admin';

/** The admin made now: its key, and the file it was written to. */
export interface AdminCreated {
  key: string;
  path: string;
}

/** Returns the admin account's key and file if they were made now. */
export async function ensureAdmin(accounts: AccountStore, dataDir: string, logger: Logger): Promise<AdminCreated | undefined> {
  if ((await accounts.admins()) > 0) return undefined;
  // An `admin` of a lower role (made by hand) gives way: the bootstrap account is the admin. Only
  // that one, checked in the delete itself: an admin account here was just made by a replica
  // starting beside this one, and deleting it would give the two replicas two keys, one of which
  // no longer logs in.
  await accounts.delete(BOOTSTRAP_ADMIN, { unlessRole: 'admin' });
  const key = await accounts.create(BOOTSTRAP_ADMIN, 'admin');
  // Two replicas bootstrapping one database at once: the other wrote the key file of its own data dir.
  if (key === undefined) return undefined;
  const path = join(dataDir, ADMIN_KEY_FILE);
  // Replaces the key of an admin that was deleted: only the new key logs in.
  writePrivateFile(path, `${key}\n`, { replace: true });
  logger.child({ component: 'auth' }).warn({ path, account: BOOTSTRAP_ADMIN }, 'created the admin account; its API key is in this file');
  return { key, path };
}
