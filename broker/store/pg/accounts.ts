/** The PostgreSQL engine of AccountStore. */
import { type AccountStore, newAccountKey, type StoredAccount } from '../../auth/accounts.js';
import type { Role } from '../../auth/identity.js';
import type { PgDatabase } from './database.js';

interface AccountRow {
  name: string;
  role: Role;
  key_hash: string;
  created_at: string;
}

export class PgAccountStore implements AccountStore {
  constructor(
    private readonly db: PgDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async get(name: string): Promise<StoredAccount | undefined> {
    const [row] = await this.db.query<AccountRow>('SELECT * FROM service_accounts WHERE name = $1', [name]);
    return row && toAccount(row);
  }

  async list(): Promise<StoredAccount[]> {
    return (await this.db.query<AccountRow>('SELECT * FROM service_accounts ORDER BY name')).map(toAccount);
  }

  async admins(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>("SELECT count(*) AS n FROM service_accounts WHERE role = 'admin'");
    return row?.n ?? 0;
  }

  async create(name: string, role: Role): Promise<string | undefined> {
    const { key, keyHash } = newAccountKey(name);
    const inserted = await this.db.query(
      'INSERT INTO service_accounts (name, role, key_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING name',
      [name, role, keyHash, this.now().toISOString()],
    );
    return inserted.length > 0 ? key : undefined;
  }

  async delete(name: string, options: { unlessRole?: Role } = {}): Promise<boolean> {
    const { unlessRole } = options;
    const deleted =
      unlessRole === undefined
        ? await this.db.query('DELETE FROM service_accounts WHERE name = $1 RETURNING name', [name])
        : await this.db.query('DELETE FROM service_accounts WHERE name = $1 AND role <> $2 RETURNING name', [name, unlessRole]);
    return deleted.length > 0;
  }
}

function toAccount(row: AccountRow): StoredAccount {
  return { name: row.name, role: row.role, keyHash: row.key_hash, createdAt: row.created_at };
}
