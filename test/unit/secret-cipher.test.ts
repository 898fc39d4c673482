/** The AES-256-GCM sealing of secrets at rest, and where its key comes from. */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SealedDataError, SecretCipher } from '../../broker/store/secret-cipher.js';
import { loadSecretsKey } from '../../broker/store/secrets-key.js';
import { scratchDir } from '../support/scratch.js';

describe('SecretCipher', () => {
  const cipher = new SecretCipher(randomBytes(32));

  it('opens what it sealed, and two seals of one value differ (a fresh IV each)', () => {
    const value = Buffer.from('hunter2 \u00e9\u0000\xff');
    const a = cipher.seal(value, 'db-password');
    const b = cipher.seal(value, 'db-password');
    expect(a.equals(b)).toBe(false);
    expect(a.includes(value)).toBe(false);
    expect(cipher.open(a, 'db-password').equals(value)).toBe(true);
    expect(cipher.open(b, 'db-password').equals(value)).toBe(true);
  });

  it('refuses a wrong key', () => {
    const sealed = cipher.seal(Buffer.from('hunter2'), 'db-password');
    expect(() => new SecretCipher(randomBytes(32)).open(sealed, 'db-password')).toThrow(SealedDataError);
  });

  it('refuses a tampered ciphertext, tag or IV, byte by byte', () => {
    const sealed = cipher.seal(Buffer.from('a longer value, to tamper with'), 'x');
    for (let i = 1; i < sealed.length; i++) {
      const tampered = Buffer.from(sealed);
      tampered[i] = tampered[i]! ^ 0x01;
      expect(() => cipher.open(tampered, 'x'), `byte ${i}`).toThrow(SealedDataError);
    }
    expect(() => cipher.open(sealed.subarray(0, sealed.length - 1), 'x')).toThrow(SealedDataError);
  });

  it('refuses a value moved to another name (the name is associated data)', () => {
    const sealed = cipher.seal(Buffer.from('hunter2'), 'db-password');
    expect(() => cipher.open(sealed, 'api-token')).toThrow(/cannot open the sealed value for "api-token"/);
  });

  it('takes only 32-byte keys', () => {
    expect(() => new SecretCipher(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('loadSecretsKey', () => {
  const fresh = () => scratchDir('flotilla-key-');

  it('creates <dataDir>/secrets.key with mode 0600 on first start, and reads the same key after', () => {
    const dataDir = fresh();
    const first = loadSecretsKey({ dataDir });
    expect(first).toMatchObject({ created: true, source: join(dataDir, 'secrets.key') });
    expect(first.looseMode).toBeUndefined();
    expect(statSync(join(dataDir, 'secrets.key')).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(join(dataDir, 'secrets.key'), 'utf8').trim(), 'base64').equals(first.key)).toBe(true);
    const second = loadSecretsKey({ dataDir });
    expect(second.created).toBe(false);
    expect(second.key.equals(first.key)).toBe(true);
  });

  it('prefers FLOTILLA_SECRETS_KEY and writes no file then', () => {
    const dataDir = fresh();
    const key = randomBytes(32);
    const found = loadSecretsKey({ dataDir, envValue: key.toString('base64') });
    expect(found).toMatchObject({ source: 'FLOTILLA_SECRETS_KEY', created: false });
    expect(found.key.equals(key)).toBe(true);
    expect(() => statSync(join(dataDir, 'secrets.key'))).toThrow();
  });

  it('refuses a malformed key without echoing it', () => {
    const dataDir = fresh();
    const short = randomBytes(16).toString('base64');
    expect(() => loadSecretsKey({ dataDir, envValue: short })).toThrow(/FLOTILLA_SECRETS_KEY must hold the base64 of 32 bytes/);
    try {
      loadSecretsKey({ dataDir, envValue: short });
    } catch (err) {
      expect((err as Error).message).not.toContain(short);
    }
    expect(() => loadSecretsKey({ dataDir, envValue: randomBytes(32).toString('hex') })).toThrow(/base64 of 32 bytes/);
    const file = join(dataDir, 'other.key');
    writeFileSync(file, 'not a key\n', { mode: 0o600 });
    expect(() => loadSecretsKey({ dataDir, keyFile: file })).toThrow(`secrets key file ${file} must hold the base64 of 32 bytes`);
  });

  it('reports a key file others can read', () => {
    const dataDir = fresh();
    const file = join(dataDir, 'loose.key');
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o644 });
    expect(loadSecretsKey({ dataDir, keyFile: file }).looseMode).toBe('0644');
  });
});
