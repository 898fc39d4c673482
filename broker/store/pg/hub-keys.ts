/**
 * The desired-state signing key every replica of a hub on PostgreSQL signs with, kept in
 * `hub_keys` sealed with the secrets key: agents pin one key, and any replica may become the
 * leader that signs. The first replica to start puts its own key there (the key of the single hub
 * whose data dir it started on, after `flotilla migrate`, or a new one); every later start, of any
 * replica, uses the stored one. A replica whose secrets key cannot open it stops, saying so.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { SigningKey } from '../../dispatcher/signing-key.js';
import { SealedDataError, type SecretCipher } from '../secret-cipher.js';
import { WrongSecretsKeyError } from '../secrets-key.js';
import type { PgQueryable } from './database.js';

export const SIGNING_KEY_NAME = 'desired-signing-key';

/** Associated data of the sealed key: a sealed value copied into another row does not open. */
const aad = (name: string) => `hub-key:${name}`;

/** The fleet's signing key: the stored one, or `local()`'s once stored (a racing replica's wins). */
export async function sharedSigningKey(
  db: PgQueryable,
  cipher: SecretCipher,
  local: () => SigningKey,
  now: () => Date,
): Promise<SigningKey> {
  const stored = await readKey(db, cipher);
  if (stored) return { ...stored, created: false };
  const own = local();
  const pem = own.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await db.query('INSERT INTO hub_keys (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING', [
    SIGNING_KEY_NAME,
    cipher.sealText(pem, aad(SIGNING_KEY_NAME)),
    now().toISOString(),
  ]);
  const kept = await readKey(db, cipher);
  if (!kept) throw new Error('the signing key written to the database cannot be read back');
  return { ...kept, created: own.created };
}

async function readKey(db: PgQueryable, cipher: SecretCipher): Promise<Omit<SigningKey, 'created'> | undefined> {
  const [row] = await db.query<{ value: Buffer }>('SELECT value FROM hub_keys WHERE name = $1', [SIGNING_KEY_NAME]);
  if (!row) return undefined;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(cipher.openText(row.value, aad(SIGNING_KEY_NAME)));
  } catch (err) {
    if (!(err instanceof SealedDataError)) throw err;
    throw new WrongSecretsKeyError(
      "the secrets key does not open the hub's signing key stored in the database: every replica needs the key the first replica started with",
    );
  }
  return { privateKey, publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString() };
}
