/**
 * What `flotilla migrate` copies and how it checks the copy: every control table of the SQLite
 * schema is in the copy's list with its primary key, and the sample and row comparison behave at
 * their edges.
 */
import { describe, expect, it } from 'vitest';
import { CONTROL_TABLES, SQLITE_INTERNAL_TABLES } from '../../broker/store/migrate/control-tables.js';
import { firstDifference, inSample, keyText, SAMPLE_EVERY, sameValue } from '../../broker/store/migrate/sample.js';
import { PG_MIGRATIONS } from '../../broker/store/pg/migrations.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';

describe('the tables migrate copies', () => {
  const db = openDatabase(':memory:');
  const tables = db
    .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .all()
    .map((row) => row.name)
    .filter((name) => !SQLITE_INTERNAL_TABLES.has(name));

  it('are every table of the current SQLite schema', () => {
    expect(CONTROL_TABLES.map((table) => table.name).sort()).toEqual(tables);
  });

  it('are each keyed by its primary key, so rows are read and looked up one by one', () => {
    for (const table of CONTROL_TABLES) {
      const key = (db.pragma(`table_info("${table.name}")`) as { name: string; pk: number }[])
        .filter((column) => column.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((column) => column.name);
      expect(table.key, table.name).toEqual(key);
    }
  });

  it('are all made by the PostgreSQL migrations too', () => {
    for (const table of CONTROL_TABLES) expect(PG_MIGRATIONS.join('\n'), table.name).toMatch(new RegExp(`CREATE TABLE ${table.name} \\(`));
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
