/**
 * The hub's Ed25519 signing key: every desired-state document is signed with
 * it, and agents pin its public half at registration (`hubKey`).
 *
 * `<dataDir>/signing-key.pem`, PKCS#8 PEM, mode 0600. Created on the first
 * start, loaded on every later one: replacing it makes every pinned agent
 * refuse the hub's documents, so it is never regenerated silently.
 *
 * Invariants:
 * - The private key is never on disk readable by anyone but the owner, not
 *   even for a moment: it is written into a file opened with mode 0600 (the
 *   umask can only narrow that), then hard-linked into place, so a crash
 *   mid-write never leaves a half-written key under the real name.
 * - Two hubs starting on the same data dir at once end up with one key: the
 *   link fails for the second, which then loads the first one's key.
 * - A key file others can read is refused (as ssh refuses such a private key):
 *   a leaked key lets anyone command the whole fleet.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writePrivateFile } from '../../shared/private-file.js';

export const SIGNING_KEY_FILE = 'signing-key.pem';

export interface SigningKey {
  privateKey: KeyObject;
  /** SPKI PEM: what agents pin as `hubKey`, served at `GET /api/v1/hub/key`. */
  publicKeyPem: string;
  /** The key file was created by this call (first start). */
  created: boolean;
}

export function loadOrCreateSigningKey(dataDir: string): SigningKey {
  const path = join(dataDir, SIGNING_KEY_FILE);
  // The hub's first file, so this makes the data dir: owner-only, since it holds
  // the keys, the admin key and hub.db (an existing dir keeps its mode).
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let created = false;
  if (!exists(path)) created = create(path);
  const privateKey = load(path);
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicKeyPem, created };
}

/** Writes a new key into place; false if another process got there first. */
function create(path: string): boolean {
  const { privateKey } = generateKeyPairSync('ed25519');
  return writePrivateFile(path, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
}

function load(path: string): KeyObject {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(
      `the hub's signing key ${path} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); run \`chmod 600 ${path}\``,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(path));
  } catch (err) {
    throw new Error(`the hub's signing key ${path} is not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`the hub's signing key ${path} is a ${key.asymmetricKeyType ?? 'unknown'} key; an Ed25519 key is required`);
  }
  return key;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
