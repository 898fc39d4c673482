/**
 * Copies a stopped single hub's data (control tables and telemetry) into a PostgreSQL database,
 * and checks the copy before it commits.
 *
 * Invariants:
 * - One transaction: the target holds all of the copy or none of it. A failed check rolls it back.
 * - The target's tables are locked (ACCESS EXCLUSIVE) from the start, so a replica starting on the
 *   database meanwhile waits for the copy instead of writing beside it, and the target found empty
 *   stays empty until the copy's rows are in. A session that holds one of them (a replica in the
 *   middle of a transaction) is waited for a few seconds, not forever: the copy is refused.
 * - Rows are copied column for column as the SQLite files hold them: sealed values (secret values,
 *   desired documents and their hashes) move as the bytes they are, under the same key and
 *   associated data, never opened and sealed again; rows keep their ids (audit records, log
 *   batches, metrics, events), and each id sequence moves past the highest id SQLite gave out.
 * - The hub's signing key (<dataDir>/signing-key.pem) is stored in hub_keys sealed with the secrets
 *   key, as a replica would store it: every replica then signs with the key the fleet pinned.
 * - Checked before COMMIT: every table's row count, and a sample (sample.ts) read back from the
 *   target and compared column by column with the source's row.
 * - A statement carries at most BATCH_ROWS rows and, roughly, BATCH_BYTES of values: telemetry
 *   rows can be large (a log batch is up to an MQTT packet), and neither the process nor the
 *   server should hold hundreds of them at once.
 */
import type { PgDatabase, PgQueryable } from '../pg/database.js';
import { errorCode } from '../pg/errors.js';
import { sharedSigningKey } from '../pg/hub-keys.js';
import { MigrateMismatch, MigrateRefused } from './errors.js';
import { firstDifference, inSample, keyText, type Row } from './sample.js';
import type { SingleHub } from './single-hub.js';
import { COPIED_TABLES, type CopiedTable } from './tables.js';

/** Rows per INSERT at most: at most 14 columns a row, well inside PostgreSQL's 65,535 parameters a statement. */
export const BATCH_ROWS = 500;
/** Bytes of values per INSERT, roughly: the next read asks for fewer rows when a batch was bigger. */
export const BATCH_BYTES = 8 * 1024 * 1024;
/** How long the copy waits for another session to let go of a table before it gives up. */
export const LOCK_TIMEOUT_MS = 5_000;

export interface TableCount {
  table: string;
  /** Rows in the SQLite file. */
  source: number;
  /** Rows in the target after the copy. */
  target: number;
}

export interface CopyReport {
  tables: TableCount[];
  /** Rows read back from the target and found equal, column by column. */
  sampled: number;
  /** Whether the signing key was added to hub_keys (false: hub.db's hub_keys held it already). */
  signingKeyAdded: boolean;
}

export interface CopyOptions {
  now?: () => Date;
  batchRows?: number;
  batchBytes?: number;
}

interface Sampled {
  table: CopiedTable;
  columns: string[];
  row: Row;
}

const quote = (name: string) => `"${name}"`;

export async function copyToPostgres(
  hub: SingleHub,
  db: PgDatabase,
  { now = () => new Date(), batchRows = BATCH_ROWS, batchBytes = BATCH_BYTES }: CopyOptions = {},
): Promise<CopyReport> {
  return db.transaction(async (tx) => {
    await lockTables(tx, db.target.description);
    const rows = await tableRows(tx);
    const held = COPIED_TABLES.filter((table) => (rows.get(table.name) ?? 0) > 0);
    if (held.length > 0)
      throw targetNotEmpty(
        db.target.description,
        held.map((table) => `${table.name} ${rows.get(table.name)}`),
      );
    const columnsOf = new Map(COPIED_TABLES.map((table) => [table, hub.columns(table)]));
    for (const [table, columns] of columnsOf) await checkColumns(tx, table, columns);

    const sources = new Map<string, number>();
    const samples: Sampled[] = [];
    for (const [table, columns] of columnsOf) {
      const count = hub.count(table);
      sources.set(table.name, count);
      await copyTable(tx, hub, table, columns, count, samples, { batchRows, batchBytes });
    }

    const signingKeyAdded = (sources.get('hub_keys') ?? 0) === 0;
    const kept = await sharedSigningKey(tx, hub.cipher, () => ({ ...hub.signingKey, created: false }), now);
    if (kept.publicKeyPem !== hub.signingKey.publicKeyPem) {
      throw new MigrateMismatch(
        'hub_keys',
        undefined,
        `the signing key in hub.db's hub_keys is not ${hub.signingKeyFile}, the key the hub signed with; nothing was copied`,
      );
    }

    const after = await tableRows(tx);
    const tables = COPIED_TABLES.map((table) => ({
      table: table.name,
      source: sources.get(table.name) ?? 0,
      target: after.get(table.name) ?? 0,
    }));
    for (const { table, source, target } of tables) {
      const expected = source + (table === 'hub_keys' && signingKeyAdded ? 1 : 0);
      if (target !== expected) {
        throw new MigrateMismatch(
          table,
          undefined,
          `${table} holds ${target} rows in PostgreSQL after the copy, the data dir ${source}; nothing was copied`,
        );
      }
    }
    for (const { table, columns, row } of samples) await compareRow(tx, table, columns, row);
    return { tables, sampled: samples.length, signingKeyAdded };
  });
}

async function copyTable(
  tx: PgQueryable,
  hub: SingleHub,
  table: CopiedTable,
  columns: readonly string[],
  count: number,
  samples: Sampled[],
  { batchRows, batchBytes }: { batchRows: number; batchBytes: number },
): Promise<void> {
  let index = 0;
  let last: Row | undefined;
  let limit = batchRows;
  for (;;) {
    const batch = hub.rows(table, limit, last);
    if (batch.length === 0) break;
    await insertRows(tx, table, columns, batch);
    for (const row of batch) {
      if (inSample(index, count)) samples.push({ table, columns: [...columns], row });
      index++;
    }
    last = batch[batch.length - 1];
    limit = nextBatchRows(
      batch.length,
      batch.reduce((sum, row) => sum + rowBytes(row), 0),
      { batchRows, batchBytes },
    );
  }
  if (table.identity !== undefined)
    await moveSequence(tx, table.name, table.identity, hub.highestId({ ...table, identity: table.identity }));
}

/**
 * Rows to read next, from the last batch's size: as many as fit `batchBytes` at its bytes per row,
 * at least one, at most `batchRows`. A batch of big rows makes the next smaller, small rows grow it back.
 */
export function nextBatchRows(rows: number, bytes: number, { batchRows, batchBytes }: { batchRows: number; batchBytes: number }): number {
  return Math.max(1, Math.min(batchRows, Math.floor((rows * batchBytes) / Math.max(bytes, 1))));
}

function rowBytes(row: Row): number {
  let bytes = 0;
  for (const value of Object.values(row)) {
    if (typeof value === 'string') bytes += value.length;
    else if (value instanceof Uint8Array) bytes += value.byteLength;
    else bytes += 8;
  }
  return bytes;
}

async function lockTables(tx: PgQueryable, target: string): Promise<void> {
  await tx.query(`SET LOCAL lock_timeout = ${LOCK_TIMEOUT_MS}`);
  try {
    await tx.query(`LOCK TABLE ${COPIED_TABLES.map((table) => quote(table.name)).join(', ')} IN ACCESS EXCLUSIVE MODE`);
  } catch (err) {
    if (errorCode(err) !== '55P03') throw err;
    throw new MigrateRefused('target_busy', `${target} is in use: another session kept its tables for ${LOCK_TIMEOUT_MS / 1000} s`, [
      'stop every hub replica and other client using the database, then migrate',
    ]);
  }
  await tx.query('SET LOCAL lock_timeout = 0');
}

/** Rows in each copied table the target has (none before a hub or a migration made them). */
export async function tableRows(db: PgQueryable): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const table of COPIED_TABLES) {
    const [exists] = await db.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [table.name]);
    if (!exists?.found) continue;
    const [row] = await db.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${quote(table.name)}`);
    counts.set(table.name, row?.n ?? 0);
  }
  return counts;
}

export function targetNotEmpty(target: string, held: readonly string[]): MigrateRefused {
  return new MigrateRefused('target_not_empty', `${target} already holds a hub's data (${held.join(', ')})`, [
    'migrate copies into a database no hub has used yet: create an empty database and migrate into that',
    "a database a replica has started on holds that replica's admin account and signing key: stop the replicas on it, drop it and create it again",
  ]);
}

async function checkColumns(tx: PgQueryable, table: CopiedTable, columns: readonly string[]): Promise<void> {
  const found = await tx.query<{ column_name: string }>(
    'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
    [table.name],
  );
  const target = new Set(found.map((row) => row.column_name));
  const differ = columns.length !== target.size || columns.some((column) => !target.has(column));
  if (differ) {
    throw new MigrateRefused(
      'target_schema',
      `table ${table.name} has columns (${[...target].join(', ')}) in PostgreSQL and (${columns.join(', ')}) in ${table.file}`,
      ['the target was not made by this Flotilla, or was altered: migrate into an empty database'],
    );
  }
}

async function insertRows(tx: PgQueryable, table: CopiedTable, columns: readonly string[], rows: readonly Row[]): Promise<void> {
  const params: unknown[] = [];
  const tuples = rows.map((row) => `(${columns.map((column) => `$${params.push(row[column] ?? null)}`).join(', ')})`);
  // OVERRIDING SYSTEM VALUE: an identity column takes the source's id, GENERATED ALWAYS or not.
  const overriding = table.identity !== undefined ? ' OVERRIDING SYSTEM VALUE' : '';
  await tx.query(`INSERT INTO ${quote(table.name)} (${columns.map(quote).join(', ')})${overriding} VALUES ${tuples.join(', ')}`, params);
}

/** The next id PostgreSQL gives out is above every id SQLite ever gave out. */
async function moveSequence(tx: PgQueryable, table: string, column: string, highest: number): Promise<void> {
  if (highest > 0) await tx.query('SELECT setval(pg_get_serial_sequence($1, $2), $3, true)', [table, column, highest]);
}

async function compareRow(tx: PgQueryable, table: CopiedTable, columns: readonly string[], row: Row): Promise<void> {
  const where = table.key.map((column, i) => `${quote(column)} = $${i + 1}`).join(' AND ');
  const [copied] = await tx.query<Row>(
    `SELECT * FROM ${quote(table.name)} WHERE ${where}`,
    table.key.map((column) => row[column]),
  );
  const key = keyText(table.key, row);
  if (copied === undefined) {
    throw new MigrateMismatch(table.name, key, `row ${key} of ${table.name} is missing from PostgreSQL after the copy; nothing was copied`);
  }
  const column = firstDifference(columns, row, copied);
  if (column !== undefined) {
    throw new MigrateMismatch(
      table.name,
      key,
      `row ${key} of ${table.name} reads back from PostgreSQL with a different ${column}; nothing was copied`,
    );
  }
}
