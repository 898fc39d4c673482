/** The PostgreSQL engine of SecretStore: values sealed as bytea. */
import type { SecretCipher } from '../secret-cipher.js';
import type { SecretStore } from '../secrets.js';
import type { PgDatabase } from './database.js';

export class PgSecretStore implements SecretStore {
  constructor(
    private readonly db: PgDatabase,
    private readonly cipher: SecretCipher,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async get(name: string): Promise<Buffer | undefined> {
    const [row] = await this.db.query<{ value: Buffer }>('SELECT value FROM secrets WHERE name = $1', [name]);
    return row ? this.cipher.open(row.value, name) : undefined;
  }

  async list(): Promise<{ name: string; updatedAt: string }[]> {
    const rows = await this.db.query<{ name: string; updated_at: string }>('SELECT name, updated_at FROM secrets ORDER BY name');
    return rows.map((row) => ({ name: row.name, updatedAt: row.updated_at }));
  }

  async set(name: string, value: Buffer): Promise<void> {
    await this.db.query(
      `INSERT INTO secrets (name, value, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
      [name, this.cipher.seal(value, name), this.now().toISOString()],
    );
  }

  async delete(name: string): Promise<boolean> {
    return (await this.db.query('DELETE FROM secrets WHERE name = $1 RETURNING name', [name])).length > 0;
  }
}
