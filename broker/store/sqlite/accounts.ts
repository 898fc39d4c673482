/** The SQLite engine of AccountStore (hub.db). */
import { type AccountStore, newAccountKey, type StoredAccount } from '../../auth/accounts.js';
import type { Role } from '../../auth/identity.js';
import type { Db } from './db.js';

interface AccountRow {
  name: string;
  role: Role;
  key_hash: string;
  created_at: string;
}

export class SqliteAccountStore implements AccountStore {
  private readonly selectOne;
  private readonly selectAll;
  private readonly insert;
  private readonly remove;
  private readonly removeUnlessRole;
  private readonly countAdmins;

  constructor(
    db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.selectOne = db.prepare<[string], AccountRow>('SELECT * FROM service_accounts WHERE name = ?');
    this.selectAll = db.prepare<[], AccountRow>('SELECT * FROM service_accounts ORDER BY name');
    this.insert = db.prepare(
      'INSERT INTO service_accounts (name, role, key_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO NOTHING',
    );
    this.remove = db.prepare('DELETE FROM service_accounts WHERE name = ?');
    this.removeUnlessRole = db.prepare('DELETE FROM service_accounts WHERE name = ? AND role <> ?');
    this.countAdmins = db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM service_accounts WHERE role = 'admin'");
  }

  async get(name: string): Promise<StoredAccount | undefined> {
    const row = this.selectOne.get(name);
    return row && toAccount(row);
  }

  async list(): Promise<StoredAccount[]> {
    return this.selectAll.all().map(toAccount);
  }

  async admins(): Promise<number> {
    return this.countAdmins.get()!.n;
  }

  async create(name: string, role: Role): Promise<string | undefined> {
    const { key, keyHash } = newAccountKey(name);
    const inserted = this.insert.run(name, role, keyHash, this.now().toISOString()).changes > 0;
    return inserted ? key : undefined;
  }

  async delete(name: string, options: { unlessRole?: Role } = {}): Promise<boolean> {
    const { unlessRole } = options;
    return (unlessRole === undefined ? this.remove.run(name) : this.removeUnlessRole.run(name, unlessRole)).changes > 0;
  }
}

function toAccount(row: AccountRow): StoredAccount {
  return { name: row.name, role: row.role, keyHash: row.key_hash, createdAt: row.created_at };
}
