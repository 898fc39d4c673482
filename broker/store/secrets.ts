/**
 * Named secret values that specs reference (`env[].fromSecret`,
 * `auth.fromSecret`, `secrets: [{name}]`): registry passwords, tokens, keys.
 *
 * Values are bytes (a key file need not be UTF-8) and are stored sealed
 * (secret-cipher.ts, the secret's name as associated data): the `value`
 * column holds a BLOB, never the plain value. Rows written as TEXT by an older
 * hub are sealed once at start (seal-at-rest.ts) before this store reads them.
 */
import type { Db } from './db.js';
import type { SecretCipher } from './secret-cipher.js';

export class SecretStore {
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

  /** The plain value; throws SealedDataError if it does not open (wrong key, altered row). */
  get(name: string): Buffer | undefined {
    const row = this.selectOne.get(name);
    if (!row) return undefined;
    if (typeof row.value === 'string') throw new Error(`secret "${name}" is stored unsealed; the hub seals such rows at start`);
    return this.cipher.open(row.value, name);
  }

  /** Names only: values never leave the hub except inside a device's desired state. */
  list(): { name: string; updatedAt: string }[] {
    return this.selectNames.all().map((row) => ({ name: row.name, updatedAt: row.updated_at }));
  }

  set(name: string, value: Buffer): void {
    this.upsert.run(name, this.cipher.seal(value, name), this.now().toISOString());
  }

  delete(name: string): boolean {
    return this.remove.run(name).changes > 0;
  }
}
