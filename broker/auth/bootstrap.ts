/**
 * The first admin: on a hub with no admin account, an `admin` account is
 * created and its API key written to `<dataDir>/admin.key` (mode 0600, the
 * owner only), never to the log. A hub whose last admin was deleted gets one
 * again at the next start, so whoever holds the data dir can always get back in.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AccountStore } from './accounts.js';

export const ADMIN_KEY_FILE = 'admin.key';
export const BOOTSTRAP_ADMIN = 'admin';

/** Returns the key file's path if one was written now. */
export function ensureAdmin(accounts: AccountStore, dataDir: string, logger: Logger): string | undefined {
  if (accounts.admins() > 0) return undefined;
  // An `admin` of a lower role (made by hand) gives way: the bootstrap account is the admin.
  accounts.delete(BOOTSTRAP_ADMIN);
  const key = accounts.create(BOOTSTRAP_ADMIN, 'admin');
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, ADMIN_KEY_FILE);
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  // writeFileSync's mode applies only to a file it creates: an old key file keeps its mode otherwise.
  chmodSync(path, 0o600);
  logger.child({ component: 'auth' }).warn({ path, account: BOOTSTRAP_ADMIN }, 'created the admin account; its API key is in this file');
  return path;
}
