/**
 * Which copied rows are read back and compared, and how two rows compare: pure functions, so the
 * check's edges (the first and last row, one-row tables, bytes against bytes) are unit tests.
 *
 * The sample is the first and the last row by key and every 97th between them: spread over the
 * whole key range, and prime so it does not fall into step with ids that were made in runs.
 */

export const SAMPLE_EVERY = 97;

export type Row = Record<string, unknown>;

/** Whether the row at `index` (0-based, in key order) of a table of `count` rows is in the sample. */
export function inSample(index: number, count: number): boolean {
  return index === 0 || index === count - 1 || index % SAMPLE_EVERY === 0;
}

/** The first of `columns` whose values differ between the two rows, or undefined when all are equal. */
export function firstDifference(columns: readonly string[], source: Row, target: Row): string | undefined {
  return columns.find((column) => !sameValue(source[column], target[column]));
}

/**
 * Equal as stored: bytes by content (SQLite's BLOB and PostgreSQL's bytea both read back as
 * Buffers), NULL only to NULL, everything else strictly, so a number stored as text differs.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
  }
  return (a ?? null) === (b ?? null);
}

/** A row's key for messages: `app=web, revision=3`. */
export function keyText(key: readonly string[], row: Row): string {
  return key.map((column) => `${column}=${String(row[column])}`).join(', ');
}
