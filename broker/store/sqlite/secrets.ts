/** The SQLite engine of SecretStore (hub.db): values sealed as BLOBs. */
import type { SecretCipher } from '../secret-cipher.js';
import type { SecretStore } from '../secrets.js';
import type { Db } from './db.js';

export class SqliteSecretStore implements SecretStore {
  private readonly selectOne;
  private readonly selectNames;
  private readonly upsert;
  private readonly remove;

  constructor(
    db: Db,
    private readonly cipher: SecretCipher,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.selectOne = db.prepare<[string], { value: Buffer | string }>('SELECT value FROM secrets WHERE name = ?');
    this.selectNames = db.prepare<[], { name: string; updated_at: string }>('SELECT name, updated_at FROM secrets ORDER BY name');
    this.upsert = db.prepare(
      'INSERT INTO secrets (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    );
    this.remove = db.prepare('DELETE FROM secrets WHERE name = ?');
  }

  async get(name: string): Promise<Buffer | undefined> {
    const row = this.selectOne.get(name);
    if (!row) return undefined;
    if (typeof row.value === 'string') throw new Error(`secret "${name}" is stored unsealed; the hub seals such rows at start`);
    return this.cipher.open(row.value, name);
  }

  async list(): Promise<{ name: string; updatedAt: string }[]> {
    return this.selectNames.all().map((row) => ({ name: row.name, updatedAt: row.updated_at }));
  }

  async set(name: string, value: Buffer): Promise<void> {
    this.upsert.run(name, this.cipher.seal(value, name), this.now().toISOString());
  }

  async delete(name: string): Promise<boolean> {
    return this.remove.run(name).changes > 0;
  }
}
