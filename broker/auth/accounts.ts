/**
 * Service accounts: a name (a DNS label), a role, and the scrypt hash of the
 * account's API key. The key itself is shown once, at creation, and is
 * `<name>.<43 characters>`: the name in front tells the hub which hash to
 * check without a scan, and cannot hold a dot, so the split is unambiguous.
 */
import type { Db } from '../store/db.js';
import { hashSecretSync, randomToken } from './hashing.js';
import type { Role } from './identity.js';

export interface StoredAccount {
  name: string;
  role: Role;
  keyHash: string;
  createdAt: string;
}

interface AccountRow {
  name: string;
  role: Role;
  key_hash: string;
  created_at: string;
}

export class AccountStore {
  private readonly selectOne;
  private readonly selectAll;
  private readonly insert;
  private readonly remove;
  private readonly countAdmins;

  constructor(
    db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.selectOne = db.prepare<[string], AccountRow>('SELECT * FROM service_accounts WHERE name = ?');
    this.selectAll = db.prepare<[], AccountRow>('SELECT * FROM service_accounts ORDER BY name');
    this.insert = db.prepare('INSERT INTO service_accounts (name, role, key_hash, created_at) VALUES (?, ?, ?, ?)');
    this.remove = db.prepare('DELETE FROM service_accounts WHERE name = ?');
    this.countAdmins = db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM service_accounts WHERE role = 'admin'");
  }

  get(name: string): StoredAccount | undefined {
    const row = this.selectOne.get(name);
    return row && toAccount(row);
  }

  list(): StoredAccount[] {
    return this.selectAll.all().map(toAccount);
  }

  admins(): number {
    return this.countAdmins.get()!.n;
  }

  /** Creates the account and returns its API key (the only time it exists outside the caller). The caller checks the name is free. */
  create(name: string, role: Role): string {
    const key = `${name}.${randomToken(32)}`;
    this.insert.run(name, role, hashSecretSync(key), this.now().toISOString());
    return key;
  }

  delete(name: string): boolean {
    return this.remove.run(name).changes > 0;
  }
}

/** The account name an API key claims: everything before its first dot. */
export function accountOfKey(key: string): string | undefined {
  const dot = key.indexOf('.');
  return dot > 0 ? key.slice(0, dot) : undefined;
}

function toAccount(row: AccountRow): StoredAccount {
  return { name: row.name, role: row.role, keyHash: row.key_hash, createdAt: row.created_at };
}
