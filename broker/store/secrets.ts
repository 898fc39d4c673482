/** Named secret values that specs reference with `fromSecret` (registry passwords, tokens). */
import type { Db } from './db.js';

export class SecretStore {
  private readonly selectOne;
  private readonly selectNames;
  private readonly upsert;
  private readonly remove;

  constructor(
    db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.selectOne = db.prepare<[string], { value: string }>('SELECT value FROM secrets WHERE name = ?');
    this.selectNames = db.prepare<[], { name: string; updated_at: string }>('SELECT name, updated_at FROM secrets ORDER BY name');
    this.upsert = db.prepare(
      'INSERT INTO secrets (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    );
    this.remove = db.prepare('DELETE FROM secrets WHERE name = ?');
  }

  get(name: string): string | undefined {
    return this.selectOne.get(name)?.value;
  }

  /** Names only: values never leave the hub except inside a device's desired state. */
  list(): { name: string; updatedAt: string }[] {
    return this.selectNames.all().map((row) => ({ name: row.name, updatedAt: row.updated_at }));
  }

  set(name: string, value: string): void {
    this.upsert.run(name, value, this.now().toISOString());
  }

  delete(name: string): boolean {
    return this.remove.run(name).changes > 0;
  }
}
