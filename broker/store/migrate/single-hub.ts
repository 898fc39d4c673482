/**
 * A stopped single hub's data dir, as the source `flotilla migrate` copies from: hub.db with its
 * control tables, telemetry.db with its logs, metrics and events, the secrets key its sealed
 * values open with, and its desired-state signing key. Every check that can refuse the migration
 * runs in `open`, before the target is touched.
 *
 * Invariants:
 * - The source does not change while it is read: both files are held under an exclusive lock
 *   until `close`. A running hub keeps a shared lock on each for as long as it has it open, so
 *   taking the lock fails at once while one runs ("stop the hub first"), and a hub started during
 *   the migration cannot open them until it is over.
 * - Nothing is written to them: taking the lock needs a writable connection, but it is
 *   query_only from then on and its transaction is rolled back at close. (SQLite itself folds the
 *   WAL a killed hub left into the file when the connection closes, as the hub's next start would;
 *   the WAL's committed transactions are read, and copied, like the rest.) No key file is created
 *   either: a missing secrets key or signing key is refused, not made anew.
 * - Every read of a file is in that one transaction, so counts and rows are one snapshot.
 * - Sealed values are read as the bytes they are; the key is only checked to open them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadOrCreateSigningKey, SIGNING_KEY_FILE, type SigningKey } from '../../dispatcher/signing-key.js';
import { TELEMETRY_MIGRATIONS } from '../../telemetry/migrations.js';
import { desiredDocAad, desiredHashAad, SealedDataError, SecretCipher } from '../secret-cipher.js';
import { loadSecretsKey, SECRETS_KEY_ENV } from '../secrets-key.js';
import type { Db } from '../sqlite/db.js';
import { MIGRATIONS } from '../sqlite/migrations.js';
import { MigrateRefused } from './errors.js';
import type { Row } from './sample.js';
import { CONTROL_TABLES, type CopiedTable, type SourceFile, SQLITE_INTERNAL_TABLES, TELEMETRY_TABLES } from './tables.js';

export interface SingleHubOptions {
  dataDir: string;
  /** The secrets key file the hub ran with; default `<dataDir>/secrets.key`. */
  keyFile?: string | undefined;
  /** `FLOTILLA_SECRETS_KEY`'s value, if set; it wins over the file, as it does for the hub. */
  envValue?: string | undefined;
}

const START_THE_HUB_ONCE = 'start the hub of this Flotilla on the data dir once and stop it (it brings its files up to date), then migrate';

export class SingleHub {
  private constructor(
    readonly dataDir: string,
    private readonly files: Record<SourceFile, Db>,
    readonly cipher: SecretCipher,
    /** Where the secrets key came from: FLOTILLA_SECRETS_KEY or the key file's path. */
    readonly secretsKeySource: string,
    readonly signingKey: SigningKey,
    readonly signingKeyFile: string,
  ) {}

  static open(options: SingleHubOptions): SingleHub {
    const { dataDir } = options;
    const hubFile = join(dataDir, 'hub.db');
    if (!existsSync(hubFile)) {
      throw new MigrateRefused('no_hub_db', `there is no hub.db in ${dataDir}`, [
        "--from is the data dir of a hub that has run (its --data-dir, FLOTILLA_DATA_DIR; './data' by default)",
      ]);
    }
    const telemetryFile = join(dataDir, 'telemetry.db');
    const opened: Db[] = [];
    try {
      const hub = lockExclusively(hubFile);
      opened.push(hub);
      checkSchema(hub, hubFile, MIGRATIONS, CONTROL_TABLES);
      // The hub makes telemetry.db at its first start, right after hub.db.
      if (!existsSync(telemetryFile)) {
        throw new MigrateRefused('schema_version', `there is no telemetry.db beside ${hubFile}`, [START_THE_HUB_ONCE]);
      }
      const telemetry = lockExclusively(telemetryFile);
      opened.push(telemetry);
      checkSchema(telemetry, telemetryFile, TELEMETRY_MIGRATIONS, TELEMETRY_TABLES);
      checkSealed(hub, hubFile);
      const key = loadKey(options);
      checkKey(hub, key.cipher, key.source);
      const signingKeyFile = join(dataDir, SIGNING_KEY_FILE);
      if (!existsSync(signingKeyFile)) {
        throw new MigrateRefused('no_signing_key', `there is no ${SIGNING_KEY_FILE} in ${dataDir}: the hub's desired-state signing key`, [
          'agents pin the key their hub signs with: migrate the data dir the hub ran on, with its signing-key.pem',
        ]);
      }
      // It exists, so this only loads it, with the checks the hub makes (owner-only mode, Ed25519).
      const signingKey = loadOrCreateSigningKey(dataDir);
      return new SingleHub(dataDir, { 'hub.db': hub, 'telemetry.db': telemetry }, key.cipher, key.source, signingKey, signingKeyFile);
    } catch (err) {
      for (const db of opened) db.close();
      throw err;
    }
  }

  /** hub.db's schema version (MIGRATIONS.length: open refuses any other). */
  get schemaVersion(): number {
    return this.files['hub.db'].pragma('user_version', { simple: true }) as number;
  }

  count(table: CopiedTable): number {
    return (this.files[table.file].prepare(`SELECT count(*) AS n FROM "${table.name}"`).get() as { n: number }).n;
  }

  /** The table's columns, in their order in its file. */
  columns(table: CopiedTable): string[] {
    return (this.files[table.file].pragma(`table_info("${table.name}")`) as { name: string }[]).map((column) => column.name);
  }

  /** Up to `limit` rows in key order, after the row whose key is `after` (from the first row without it). */
  rows(table: CopiedTable, limit: number, after?: Row): Row[] {
    const key = table.key.map((column) => `"${column}"`).join(', ');
    const where = after === undefined ? '' : `WHERE (${key}) > (${table.key.map(() => '?').join(', ')})`;
    const params = after === undefined ? [] : table.key.map((column) => after[column]);
    return this.files[table.file].prepare(`SELECT * FROM "${table.name}" ${where} ORDER BY ${key} LIMIT ?`).all(...params, limit) as Row[];
  }

  /**
   * The highest id the table's identity column ever held: its largest, or for an AUTOINCREMENT
   * table SQLite's own high-water mark, which never goes back even when the newest rows are gone.
   * The copy's sequence must not hand out one of those ids again.
   */
  highestId(table: CopiedTable & { identity: string }): number {
    const db = this.files[table.file];
    const [largest] = db.prepare(`SELECT coalesce(max("${table.identity}"), 0) AS n FROM "${table.name}"`).all() as { n: number }[];
    const hasSequence = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'").get() !== undefined;
    const sequence = hasSequence
      ? (db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(table.name) as { seq: number } | undefined)?.seq
      : undefined;
    return Math.max(largest?.n ?? 0, sequence ?? 0);
  }

  /** Ends the read transactions (nothing was written) and lets go of both files. */
  close(): void {
    for (const db of Object.values(this.files)) {
      if (!db.open) continue;
      try {
        db.exec('ROLLBACK');
      } finally {
        db.close();
      }
    }
  }
}

function lockExclusively(file: string): Db {
  let db: Db;
  try {
    db = new Database(file, { fileMustExist: true });
  } catch (err) {
    throw new Error(`cannot open ${file}: ${(err as Error).message}`);
  }
  try {
    // No waiting: a lock held by a running hub is not let go of in any time worth waiting for.
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    try {
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
        throw new MigrateRefused('hub_running', `${file} is in use by another process: stop the hub first`, [
          'migrate copies a stopped hub, so that nothing changes while it copies',
        ]);
      }
      if (code === 'SQLITE_NOTADB') throw new Error(`${file} is not a SQLite database`);
      throw err;
    }
    db.pragma('query_only = ON');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function checkSchema(db: Db, file: string, migrations: readonly string[], expected: readonly CopiedTable[]): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version < migrations.length) {
    throw new MigrateRefused('schema_version', `${file} has schema version ${version}, older than this Flotilla's (${migrations.length})`, [
      START_THE_HUB_ONCE,
    ]);
  }
  if (version > migrations.length) {
    throw new MigrateRefused('schema_version', `${file} has schema version ${version}, newer than this Flotilla's (${migrations.length})`, [
      'migrate with the Flotilla release the hub ran',
    ]);
  }
  const tables = new Set(
    db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((row) => row.name)
      .filter((name) => !SQLITE_INTERNAL_TABLES.has(name)),
  );
  const unknown = [...tables].filter((name) => !expected.some((table) => table.name === name));
  if (unknown.length > 0) {
    throw new MigrateRefused('unknown_table', `${file} holds tables migrate does not know: ${unknown.join(', ')}`, [
      "they are not a Flotilla hub's: remove them from a copy of the data dir and migrate the copy",
    ]);
  }
  const missing = expected.filter((table) => !tables.has(table.name)).map((table) => table.name);
  if (missing.length > 0) {
    throw new MigrateRefused('schema_version', `${file} lacks tables of its schema version: ${missing.join(', ')}`, [
      'it was not made by a Flotilla hub, or was altered',
    ]);
  }
}

/** Refuses rows an older hub stored in plain text: the copy moves sealed bytes and never seals. */
function checkSealed(db: Db, file: string): void {
  const { secrets } = db.prepare<[], { secrets: number }>("SELECT count(*) AS secrets FROM secrets WHERE typeof(value) = 'text'").get()!;
  const { documents } = db
    .prepare<[], { documents: number }>(
      "SELECT count(*) AS documents FROM devices WHERE typeof(desired_doc) = 'text' OR typeof(desired_hash) = 'text'",
    )
    .get()!;
  if (secrets + documents > 0) {
    throw new MigrateRefused(
      'plain_text',
      `${file} holds ${secrets} secret value(s) and ${documents} desired document(s) in plain text, written by an older hub`,
      ['start the hub of this Flotilla on the data dir once and stop it (it seals them), then migrate'],
    );
  }
}

function loadKey(options: SingleHubOptions): { cipher: SecretCipher; source: string } {
  const fromEnv = options.envValue !== undefined && options.envValue.trim() !== '';
  const file = options.keyFile ?? join(options.dataDir, 'secrets.key');
  // loadSecretsKey makes a key file that is missing, as a first start should; a migration should not.
  if (!fromEnv && !existsSync(file)) {
    throw new MigrateRefused('no_secrets_key', `no secrets key: ${file} does not exist and ${SECRETS_KEY_ENV} is not set`, [
      'pass the key the hub ran with: --secrets-key-file FILE, or FLOTILLA_SECRETS_KEY',
    ]);
  }
  const found = loadSecretsKey({ dataDir: options.dataDir, keyFile: file, envValue: options.envValue });
  return { cipher: new SecretCipher(found.key), source: found.source };
}

/** One sealed value of each kind is enough: the hub seals every row with the one key. */
function checkKey(db: Db, cipher: SecretCipher, source: string): void {
  const secret = db.prepare<[], { name: string; value: Buffer }>('SELECT name, value FROM secrets ORDER BY name LIMIT 1').get();
  const device = db
    .prepare<[], { id: string; desired_doc: Buffer | null; desired_hash: Buffer | null }>(
      'SELECT id, desired_doc, desired_hash FROM devices WHERE desired_doc IS NOT NULL ORDER BY id LIMIT 1',
    )
    .get();
  const tryOpen = (open: () => unknown, what: string) => {
    try {
      open();
    } catch (err) {
      if (!(err instanceof SealedDataError)) throw err;
      throw new MigrateRefused('wrong_secrets_key', `the secrets key from ${source} does not open ${what}`, [
        'it is not the key this hub sealed its data with: pass that key (--secrets-key-file FILE, or FLOTILLA_SECRETS_KEY)',
      ]);
    }
  };
  if (secret) tryOpen(() => cipher.open(secret.value, secret.name), `secret "${secret.name}" in hub.db`);
  if (device?.desired_doc)
    tryOpen(() => cipher.open(device.desired_doc!, desiredDocAad(device.id)), `the desired document of device "${device.id}"`);
  if (device?.desired_hash)
    tryOpen(() => cipher.open(device.desired_hash!, desiredHashAad(device.id)), `the desired hash of device "${device.id}"`);
}
