/**
 * Run once at every hub start, before any store reads a row:
 *
 * 1. Checks the key against one sealed secret and one sealed desired document,
 *    so a wrong key stops the hub with a message that says so, rather than a
 *    hub that starts and fails on the first device, or publishes garbage.
 * 2. Seals what an older hub wrote in plain text (secret values, desired
 *    documents and their hashes): a one-time re-encryption, told apart by SQLite's storage
 *    class (TEXT then, BLOB now) rather than by a marker a value could mimic.
 *    Plain bytes must not linger afterwards: `secure_delete` zeroes the cells
 *    and pages the old values leave behind, and a TRUNCATE checkpoint moves
 *    the sealed pages into hub.db and empties the WAL of the old ones.
 *
 * Not a migration in migrations.ts: those are SQL only, and sealing needs the key.
 */
import { desiredDocAad, desiredHashAad, SealedDataError, type SecretCipher } from '../secret-cipher.js';
import { openSecretsKey, type SecretsAtRestOptions, WrongSecretsKeyError } from '../secrets-key.js';
import type { Db } from './db.js';

export interface SealReport {
  /** Plain-text secret values and desired documents sealed by this start. */
  sealedSecrets: number;
  sealedDocuments: number;
}

export function sealAtRest(db: Db, cipher: SecretCipher): SealReport {
  checkKey(db, cipher);
  const secrets = db.prepare<[], { name: string; value: string }>("SELECT name, value FROM secrets WHERE typeof(value) = 'text'").all();
  const docs = db
    .prepare<[], { id: string; desired_doc: Buffer | string | null; desired_hash: Buffer | string | null }>(
      "SELECT id, desired_doc, desired_hash FROM devices WHERE typeof(desired_doc) = 'text' OR typeof(desired_hash) = 'text'",
    )
    .all();
  if (secrets.length === 0 && docs.length === 0) return { sealedSecrets: 0, sealedDocuments: 0 };

  const secureDelete = db.pragma('secure_delete', { simple: true });
  db.pragma('secure_delete = ON');
  try {
    const setSecret = db.prepare('UPDATE secrets SET value = ? WHERE name = ?');
    const setDoc = db.prepare('UPDATE devices SET desired_doc = ?, desired_hash = ? WHERE id = ?');
    // Only what is TEXT: the other column of the row may be sealed already.
    const seal = (value: Buffer | string | null, aad: string) => (typeof value === 'string' ? cipher.sealText(value, aad) : value);
    db.transaction(() => {
      for (const row of secrets) setSecret.run(cipher.sealText(row.value, row.name), row.name);
      for (const row of docs) {
        setDoc.run(seal(row.desired_doc, desiredDocAad(row.id)), seal(row.desired_hash, desiredHashAad(row.id)), row.id);
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.pragma(`secure_delete = ${secureDelete ? 'ON' : 'OFF'}`);
  }
  return { sealedSecrets: secrets.length, sealedDocuments: docs.length };
}

/** One sealed row of each kind is enough: every row was sealed with the same key. */
function checkKey(db: Db, cipher: SecretCipher): void {
  const secret = db
    .prepare<[], { name: string; value: Buffer }>("SELECT name, value FROM secrets WHERE typeof(value) = 'blob' LIMIT 1")
    .get();
  const doc = db
    .prepare<[], { id: string; desired_doc: Buffer }>("SELECT id, desired_doc FROM devices WHERE typeof(desired_doc) = 'blob' LIMIT 1")
    .get();
  if (secret) tryOpen(() => cipher.open(secret.value, secret.name), `secret "${secret.name}"`);
  if (doc) tryOpen(() => cipher.open(doc.desired_doc, desiredDocAad(doc.id)), `the desired document of device "${doc.id}"`);
}

function tryOpen(open: () => unknown, what: string): void {
  try {
    open();
  } catch (err) {
    if (!(err instanceof SealedDataError)) throw err;
    throw new WrongSecretsKeyError(`the secrets key does not open ${what}: it is not the key this hub's data was sealed with`);
  }
}

/**
 * Finds the key, checks it against the data and seals any plain rows: what a
 * hub does with its secrets at start. Throws (the hub does not start) on a
 * malformed or wrong key, naming where the key came from but never the key.
 */
export function openSecretsAtRest(db: Db, options: SecretsAtRestOptions): SecretCipher {
  const { cipher, wrongKey, log } = openSecretsKey(options);
  let report: SealReport;
  try {
    report = sealAtRest(db, cipher);
  } catch (err) {
    throw wrongKey(err);
  }
  if (report.sealedSecrets + report.sealedDocuments > 0) {
    options.logger.info({ ...log, ...report }, 'sealed secret values and desired documents an older hub stored in plain text');
  }
  return cipher;
}
