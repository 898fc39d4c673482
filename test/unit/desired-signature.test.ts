import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadOrCreateSigningKey, SIGNING_KEY_FILE } from '../../broker/dispatcher/signing-key.js';
import { DesiredState, decode, parseHubKey, signDesired, signedBytes, validate, verifyDesired } from '../../shared/index.js';
import { scratchDir } from '../support/scratch.js';

const hub = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');

const doc = (): DesiredState => ({
  deviceId: 'dev-a',
  revision: 5,
  issuedAt: '2026-11-28T12:00:00.000Z',
  apps: [
    { name: 'web', revision: 2, containers: [{ name: 'web', image: 'registry.local/web:1', env: [{ name: 'MODE', value: 'prod' }] }] },
  ],
});

describe('desired-state signatures', () => {
  it('a signed document verifies, validates against the schema, and carries alg ed25519 with a 64-byte base64 value', () => {
    const signed = signDesired(doc(), hub.privateKey);
    expect(signed.signature?.alg).toBe('ed25519');
    expect(Buffer.from(signed.signature!.value, 'base64')).toHaveLength(64);
    expect(verifyDesired(signed, hub.publicKey)).toBeUndefined();
    expect(validate(DesiredState, signed).ok).toBe(true);
  });

  it('survives JSON with another key order (what the agent persists and reloads)', () => {
    const signed = signDesired(doc(), hub.privateKey);
    const reordered = JSON.parse(
      `{"signature":${JSON.stringify(signed.signature)},"apps":${JSON.stringify(signed.apps)},"revision":5,"issuedAt":"${signed.issuedAt}","deviceId":"dev-a"}`,
    ) as DesiredState;
    expect(verifyDesired(reordered, hub.publicKey)).toBeUndefined();
    const decoded = decode(DesiredState, JSON.stringify(signed));
    expect(decoded.ok && verifyDesired(decoded.value, hub.publicKey)).toBeUndefined();
  });

  it('signing is deterministic and replaces an existing signature', () => {
    const once = signDesired(doc(), hub.privateKey);
    const twice = signDesired(signDesired(doc(), other.privateKey), hub.privateKey);
    expect(twice.signature).toEqual(once.signature);
    expect(signedBytes(once).toString()).not.toContain('signature');
  });

  it.each([
    ['revision', (d: DesiredState) => ({ ...d, revision: 6 })],
    ['deviceId', (d: DesiredState) => ({ ...d, deviceId: 'dev-b' })],
    ['issuedAt', (d: DesiredState) => ({ ...d, issuedAt: '2026-11-28T12:00:01.000Z' })],
    ['an image', (d: DesiredState) => ({ ...d, apps: [{ ...d.apps[0]!, containers: [{ name: 'web', image: 'evil/miner:1' }] }] })],
    ['an env value', (d: DesiredState) => ({ ...d, apps: [{ ...d.apps[0]!, containers: [{ ...d.apps[0]!.containers[0]!, env: [] }] }] })],
    ['an added app', (d: DesiredState) => ({ ...d, apps: [...d.apps, { ...d.apps[0]!, name: 'extra' }] })],
    ['the app list emptied', (d: DesiredState) => ({ ...d, apps: [] })],
  ])('a tampered %s is a bad signature', (_field, tamper) => {
    const signed = signDesired(doc(), hub.privateKey);
    expect(verifyDesired(tamper(signed), hub.publicKey)).toBe('bad signature');
  });

  it('a document signed with another key is a bad signature', () => {
    expect(verifyDesired(signDesired(doc(), other.privateKey), hub.publicKey)).toBe('bad signature');
  });

  it('a missing signature is "unsigned"', () => {
    expect(verifyDesired(doc(), hub.publicKey)).toBe('unsigned');
  });

  it.each([
    ['not base64', 'not base64 at all!'],
    ['too short', Buffer.alloc(32).toString('base64')],
    ['the right length of zeros', Buffer.alloc(64).toString('base64')],
    ['base64 with trailing junk', `${signDesired(doc(), hub.privateKey).signature!.value}AA`],
  ])('a mangled value (%s) is a bad signature, never an exception', (_what, value) => {
    expect(verifyDesired({ ...doc(), signature: { alg: 'ed25519', value } }, hub.publicKey)).toBe('bad signature');
  });

  it('the schema refuses another algorithm and unknown signature fields', () => {
    const signed = signDesired(doc(), hub.privateKey);
    expect(validate(DesiredState, { ...signed, signature: { alg: 'none', value: 'x' } }).ok).toBe(false);
    expect(validate(DesiredState, { ...signed, signature: { ...signed.signature, kid: 'k1' } }).ok).toBe(false);
  });

  it('parseHubKey takes an Ed25519 SPKI PEM and refuses private, other-type and garbage keys', () => {
    const pem = hub.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(verifyDesired(signDesired(doc(), hub.privateKey), parseHubKey(pem))).toBeUndefined();
    expect(() => parseHubKey(hub.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).toThrow(/private key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => parseHubKey(rsa)).toThrow(/rsa key.*Ed25519/);
    expect(() => parseHubKey('hello')).toThrow(/not a PEM public key/);
  });
});

describe('the hub signing key file', () => {
  const scratch = () => scratchDir('flotilla-signing-key-');

  it('is created on the first start with mode 0600 and loaded, unchanged, on the next', () => {
    const dataDir = join(scratch(), 'nested', 'hub');
    const first = loadOrCreateSigningKey(dataDir);
    expect(first.created).toBe(true);
    const path = join(dataDir, SIGNING_KEY_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(first.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);

    const second = loadOrCreateSigningKey(dataDir);
    expect(second.created).toBe(false);
    expect(second.publicKeyPem).toBe(first.publicKeyPem);
    // A document the first start signed verifies with the key the second start loaded.
    expect(verifyDesired(signDesired(doc(), first.privateKey), parseHubKey(second.publicKeyPem))).toBeUndefined();
  });

  it('is created 0600 even under a permissive umask, and no temporary file is left behind', () => {
    const dataDir = scratch();
    const previous = process.umask(0);
    try {
      loadOrCreateSigningKey(dataDir);
    } finally {
      process.umask(previous);
    }
    expect(statSync(join(dataDir, SIGNING_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dataDir)).toEqual([SIGNING_KEY_FILE]);
  });

  it('refuses a key file others can read, and a file that is not an Ed25519 key', () => {
    const loose = scratch();
    writeFileSync(join(loose, SIGNING_KEY_FILE), hub.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o644 });
    expect(() => loadOrCreateSigningKey(loose)).toThrow(/readable by others \(mode 0644\).*chmod 600/);

    const rsa = scratch();
    const rsaKey = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    writeFileSync(join(rsa, SIGNING_KEY_FILE), rsaKey, { mode: 0o600 });
    expect(() => loadOrCreateSigningKey(rsa)).toThrow(/rsa key; an Ed25519 key is required/);

    const junk = scratch();
    writeFileSync(join(junk, SIGNING_KEY_FILE), 'not a key', { mode: 0o600 });
    expect(() => loadOrCreateSigningKey(junk)).toThrow(/not a PEM private key/);
  });
});
