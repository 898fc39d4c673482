/**
 * The hub's control tables as `flotilla migrate` copies them, in copy order, each with its primary
 * key: rows are read in key order (SQLite compares text by bytes, as PostgreSQL's COLLATE "C"
 * columns do) and the sample is chosen and looked up by key.
 *
 * Every table of the control schema is here: the source is refused if hub.db holds a table this
 * list lacks, so a table added by a later migration cannot be left behind by a copy that does not
 * know it (test/unit/migrate-tables.test.ts holds the list to MIGRATIONS).
 */
export interface ControlTable {
  readonly name: string;
  readonly key: readonly string[];
}

export const CONTROL_TABLES: readonly ControlTable[] = [
  { name: 'apps', key: ['name'] },
  { name: 'app_revisions', key: ['app', 'revision'] },
  { name: 'devices', key: ['id'] },
  { name: 'secrets', key: ['name'] },
  { name: 'rollouts', key: ['app'] },
  { name: 'service_accounts', key: ['name'] },
  { name: 'device_credentials', key: ['device_id'] },
  { name: 'registration_tokens', key: ['id'] },
  { name: 'audit', key: ['id'] },
  { name: 'hub_keys', key: ['name'] },
];

/** SQLite's own bookkeeping tables, which are not control data. */
export const SQLITE_INTERNAL_TABLES: ReadonlySet<string> = new Set(['sqlite_sequence', 'sqlite_stat1', 'sqlite_stat4']);
