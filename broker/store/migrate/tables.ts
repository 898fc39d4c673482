/**
 * The tables `flotilla migrate` copies, in copy order, each with the SQLite file it is in and its
 * primary key: rows are read in key order (SQLite compares text by bytes, as PostgreSQL's
 * COLLATE "C" columns do) and the sample is chosen and looked up by key.
 *
 * Every table of both files is here: the source is refused if hub.db or telemetry.db holds a
 * table this list lacks, so a table added by a later migration cannot be left behind by a copy
 * that does not know it (test/unit/migrate-tables.test.ts holds the list to both migration lists).
 */
export type SourceFile = 'hub.db' | 'telemetry.db';

export interface CopiedTable {
  readonly name: string;
  readonly file: SourceFile;
  readonly key: readonly string[];
  /**
   * The column PostgreSQL numbers itself (an identity column): the copy writes hub.db's ids into
   * it and then moves its sequence past the highest id SQLite gave out.
   */
  readonly identity?: string;
}

export const CONTROL_TABLES: readonly CopiedTable[] = [
  { name: 'apps', file: 'hub.db', key: ['name'] },
  { name: 'app_revisions', file: 'hub.db', key: ['app', 'revision'] },
  { name: 'devices', file: 'hub.db', key: ['id'] },
  { name: 'secrets', file: 'hub.db', key: ['name'] },
  { name: 'rollouts', file: 'hub.db', key: ['app'] },
  { name: 'service_accounts', file: 'hub.db', key: ['name'] },
  { name: 'device_credentials', file: 'hub.db', key: ['device_id'] },
  { name: 'registration_tokens', file: 'hub.db', key: ['id'] },
  { name: 'audit', file: 'hub.db', key: ['id'], identity: 'id' },
  { name: 'hub_keys', file: 'hub.db', key: ['name'] },
  { name: 'agent_targets', file: 'hub.db', key: ['name'] },
  { name: 'agent_target_revisions', file: 'hub.db', key: ['revision'] },
  // Copied as a row like any other: the numbering goes on after the highest revision it gave out.
  { name: 'agent_revision_counter', file: 'hub.db', key: ['id'] },
  // Before their executions, which reference them.
  { name: 'jobs', file: 'hub.db', key: ['name'] },
  { name: 'job_executions', file: 'hub.db', key: ['job', 'device'] },
  // Every uid ever given, deleted jobs' too: a replica must not give one out again either.
  { name: 'job_uids', file: 'hub.db', key: ['uid'] },
];

/**
 * Logs, metrics and events. Their ids are kept: a log line's id is its batch's id times the lines
 * a batch may hold plus its index, and a follower resumes from one.
 */
export const TELEMETRY_TABLES: readonly CopiedTable[] = [
  { name: 'log_batches', file: 'telemetry.db', key: ['id'], identity: 'id' },
  { name: 'metrics', file: 'telemetry.db', key: ['id'], identity: 'id' },
  { name: 'events', file: 'telemetry.db', key: ['id'], identity: 'id' },
];

export const COPIED_TABLES: readonly CopiedTable[] = [...CONTROL_TABLES, ...TELEMETRY_TABLES];

/** SQLite's own bookkeeping tables, which are not Flotilla's data. */
export const SQLITE_INTERNAL_TABLES: ReadonlySet<string> = new Set(['sqlite_sequence', 'sqlite_stat1', 'sqlite_stat4']);
