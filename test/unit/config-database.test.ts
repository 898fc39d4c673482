import { describe, expect, it } from 'vitest';
import { resolveHubConfig } from '../../broker/config.js';

describe('hub configuration: database', () => {
  it('is unset by default, so the hub keeps SQLite in its data dir', () => {
    expect(resolveHubConfig({}).database).toBeUndefined();
  });

  it('takes a postgres:// or postgresql:// URL as given', () => {
    const url = 'postgres://flotilla:s3cret@db.example:5432/flotilla';
    expect(resolveHubConfig({ database: url }).database).toBe(url);
    expect(resolveHubConfig({ database: 'postgresql://flotilla@10.0.0.5/hub' }).database).toBe('postgresql://flotilla@10.0.0.5/hub');
  });

  it('refuses a URL the hub cannot use, saying why without repeating its password', () => {
    const refused = (database: string) => {
      try {
        resolveHubConfig({ database });
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error(`accepted ${database}`);
    };
    expect(refused('mysql://root:hunter2@db/flotilla')).toBe(
      'invalid hub configuration:\ndatabase: the database URL must start with postgres:// (got mysql://)',
    );
    expect(refused('postgres://flotilla:hunter2@:5432/flotilla')).toBe(
      'invalid hub configuration:\ndatabase: the database URL is not a URL; expected postgres://role:password@host:5432/database (percent-encode @ / : # ? in a password: %40 %2F %3A %23 %3F)',
    );
    // A raw `/`, `#` or `?` in a password ends the URL's authority inside it.
    for (const password of ['pa/ss', 'pa#ss', 'pa?ss']) {
      const message = refused(`postgres://flotilla:${password}@db.example:5432/flotilla`);
      expect(message).toMatch(/is not a URL; .* \(percent-encode @ \/ : # \? in a password: %40 %2F %3A %23 %3F\)$/);
      expect(message).not.toContain(password);
    }
    // Encoded, the same password is taken.
    const encoded = `postgres://flotilla:${encodeURIComponent('pa/ss#1?@:')}@db.example:5432/flotilla`;
    expect(resolveHubConfig({ database: encoded }).database).toBe(encoded);
    expect(refused('postgres://db.example/flotilla')).toBe(
      'invalid hub configuration:\ndatabase: the database URL names no role; expected postgres://role:password@host:5432/database',
    );
    expect(refused('')).toMatch(/^invalid hub configuration:\ndatabase: /);
  });
});
