/**
 * Two replicas bootstrapping one new database at once: the one that counted no admin before the
 * other's account landed must not delete that account to make its own, which would leave the first
 * replica with a key that no longer logs in, also when both found an `admin` of a lower role. Such
 * an account still gives way.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AccountStore } from '../../broker/auth/accounts.js';
import { BOOTSTRAP_ADMIN, ensureAdmin } from '../../broker/auth/bootstrap.js';
import { verifySecret } from '../../broker/auth/hashing.js';
import { SqliteAccountStore } from '../../broker/store/sqlite/accounts.js';
import { type Db, openDatabase } from '../../broker/store/sqlite/db.js';
import { LogCapture } from '../support/logs.js';
import { scratchDir } from '../support/scratch.js';

describe('the admin bootstrap beside another replica', () => {
  const dirs: string[] = [];
  const dbs: Db[] = [];
  afterEach(() => {
    for (const db of dbs.splice(0)) db.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  function store(): { accounts: SqliteAccountStore; dataDir: string } {
    const dataDir = scratchDir('flotilla-admin-race-');
    dirs.push(dataDir);
    const db = openDatabase(join(dataDir, 'hub.db'));
    dbs.push(db);
    return { accounts: new SqliteAccountStore(db), dataDir };
  }

  /** The store as a replica sees it when another replica's admin lands right after its count of admins. */
  function countedBeforeTheOther(accounts: AccountStore, other: () => Promise<unknown>): AccountStore {
    return new Proxy(accounts, {
      get(target, prop, receiver) {
        if (prop !== 'admins') return Reflect.get(target, prop, receiver);
        return async () => {
          const count = await target.admins();
          await other();
          return count;
        };
      },
    });
  }

  it('leaves the admin the other replica made, and makes none of its own', async () => {
    const { accounts, dataDir } = store();
    let othersKey: string | undefined;
    const stale = countedBeforeTheOther(accounts, async () => {
      othersKey = await accounts.create(BOOTSTRAP_ADMIN, 'admin');
    });
    expect(await ensureAdmin(stale, dataDir, new LogCapture().logger)).toBeUndefined();
    const admin = await accounts.get(BOOTSTRAP_ADMIN);
    expect(admin?.role).toBe('admin');
    expect(await verifySecret(othersKey!, admin!.keyHash)).toBe(true);
  });

  it('leaves the admin the other replica made in place of a lower-role `admin` both replicas found', async () => {
    const { accounts, dataDir } = store();
    await accounts.create(BOOTSTRAP_ADMIN, 'viewer');
    let othersKey: string | undefined;
    // The other replica replaces the viewer with its admin just before this one deletes the viewer it saw.
    const late = new Proxy(accounts, {
      get(target, prop, receiver) {
        if (prop !== 'delete') return Reflect.get(target, prop, receiver);
        return async (...args: Parameters<AccountStore['delete']>) => {
          if (othersKey === undefined) {
            await target.delete(BOOTSTRAP_ADMIN);
            othersKey = await target.create(BOOTSTRAP_ADMIN, 'admin');
          }
          return target.delete(...args);
        };
      },
    });
    expect(await ensureAdmin(late, dataDir, new LogCapture().logger)).toBeUndefined();
    const admin = await accounts.get(BOOTSTRAP_ADMIN);
    expect(admin?.role).toBe('admin');
    expect(await verifySecret(othersKey!, admin!.keyHash)).toBe(true);
  });

  it('replaces an `admin` account of a lower role with the bootstrap admin', async () => {
    const { accounts, dataDir } = store();
    const viewersKey = await accounts.create(BOOTSTRAP_ADMIN, 'viewer');
    const created = await ensureAdmin(accounts, dataDir, new LogCapture().logger);
    const admin = await accounts.get(BOOTSTRAP_ADMIN);
    expect(admin?.role).toBe('admin');
    expect(await verifySecret(created!.key, admin!.keyHash)).toBe(true);
    expect(await verifySecret(viewersKey!, admin!.keyHash)).toBe(false);
  });
});
