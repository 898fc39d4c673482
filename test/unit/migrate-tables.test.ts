/**
 * What `flotilla migrate` copies and how it checks the copy: every table of both SQLite files is
 * in the copy's list with its primary key and its identity column, and the sample and row
 * comparison behave at their edges.
 */
import { describe, expect, it } from 'vitest';
import { nextBatchRows } from '../../broker/store/migrate/copy.js';
import { firstDifference, inSample, keyText, SAMPLE_EVERY, sameValue } from '../../broker/store/migrate/sample.js';
import { CONTROL_TABLES, SQLITE_INTERNAL_TABLES, TELEMETRY_TABLES } from '../../broker/store/migrate/tables.js';
import { PG_MIGRATIONS } from '../../broker/store/pg/migrations.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { MIGRATIONS } from '../../broker/store/sqlite/migrations.js';
import { TELEMETRY_MIGRATIONS } from '../../broker/telemetry/migrations.js';
import { TELEMETRY_PG_MIGRATIONS } from '../../broker/telemetry/pg/migrations.js';

describe.each([
  { file: 'hub.db', migrations: MIGRATIONS, copied: CONTROL_TABLES, pg: PG_MIGRATIONS },
  { file: 'telemetry.db', migrations: TELEMETRY_MIGRATIONS, copied: TELEMETRY_TABLES, pg: TELEMETRY_PG_MIGRATIONS },
])('the tables migrate copies from $file', ({ migrations, copied, pg }) => {
  const db = openDatabase(':memory:', migrations);
  const tables = db
    .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .all()
    .map((row) => row.name)
    .filter((name) => !SQLITE_INTERNAL_TABLES.has(name));
  const columns = (table: string) => db.pragma(`table_info("${table}")`) as { name: string; pk: number }[];

  it('are every table of the current SQLite schema', () => {
    expect(copied.map((table) => table.name).sort()).toEqual(tables);
  });

  it('are each keyed by its primary key, so rows are read and looked up one by one', () => {
    for (const table of copied) {
      const key = columns(table.name)
        .filter((column) => column.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((column) => column.name);
      expect(table.key, table.name).toEqual(key);
    }
  });

  it('are all made by the PostgreSQL migrations too, an identity column where PostgreSQL numbers rows', () => {
    const sql = pg.join('\n');
    for (const table of copied) {
      const made = new RegExp(`CREATE TABLE ${table.name} \\(([^;]*?)\\n  \\);`).exec(sql);
      expect(made, table.name).not.toBeNull();
      const identity = /^\s*(\w+)\s+bigint GENERATED (ALWAYS|BY DEFAULT) AS IDENTITY/m.exec(made![1]!)?.[1];
      expect(table.identity, table.name).toBe(identity);
    }
  });
});

describe('the sample of copied rows', () => {
  it('holds the first and last row and every 97th between', () => {
    const picked = (count: number) => Array.from({ length: count }, (_, i) => i).filter((i) => inSample(i, count));
    expect(picked(1)).toEqual([0]);
    expect(picked(2)).toEqual([0, 1]);
    expect(picked(200)).toEqual([0, SAMPLE_EVERY, 2 * SAMPLE_EVERY, 199]);
    expect(picked(SAMPLE_EVERY + 1)).toEqual([0, SAMPLE_EVERY]);
  });

  it('compares bytes by content, NULL only to NULL, and a number stored as text as different', () => {
    expect(sameValue(Buffer.from('abc'), new Uint8Array([97, 98, 99]))).toBe(true);
    expect(sameValue(Buffer.from('abc'), Buffer.from('abd'))).toBe(false);
    expect(sameValue(Buffer.from('abc'), 'abc')).toBe(false);
    expect(sameValue(null, undefined)).toBe(true);
    expect(sameValue(null, '')).toBe(false);
    expect(sameValue(0, null)).toBe(false);
    expect(sameValue(5, '5')).toBe(false);
    expect(sameValue(5, 5)).toBe(true);
  });

  it('names the first column that differs, and the row by its key', () => {
    const columns = ['app', 'revision', 'spec', 'cause'];
    const row = { app: 'web', revision: 3, spec: '{}', cause: 'rollback to 1' };
    expect(firstDifference(columns, row, { ...row })).toBeUndefined();
    expect(firstDifference(columns, row, { ...row, cause: null })).toBe('cause');
    expect(firstDifference(columns, row, { ...row, spec: '{ }', cause: null })).toBe('spec');
    expect(keyText(['app', 'revision'], row)).toBe('app=web, revision=3');
  });
});

describe('the rows copied per statement', () => {
  const limits = { batchRows: 500, batchBytes: 8 * 1024 * 1024 };

  it('are as many as allowed while rows are small', () => {
    expect(nextBatchRows(500, 500 * 1_000, limits)).toBe(500);
  });

  it('shrink to what fits the byte budget after big rows, never below one, and grow back', () => {
    // 500 log batches of 1 MiB each: 8 fit.
    expect(nextBatchRows(500, 500 * 1024 * 1024, limits)).toBe(8);
    // One row bigger than the budget: still one at a time.
    expect(nextBatchRows(1, 64 * 1024 * 1024, limits)).toBe(1);
    // 8 small rows after big ones: back to the row limit.
    expect(nextBatchRows(8, 8 * 1_000, limits)).toBe(500);
  });
});
