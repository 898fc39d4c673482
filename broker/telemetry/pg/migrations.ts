/**
 * The telemetry tables in the replicas' shared PostgreSQL database: the same
 * three tables, columns and keys as the telemetry file (../migrations.ts), so
 * both engines answer a query alike. They are versioned in a table of their
 * own (`telemetry_schema_version`), apart from the control data's list
 * (broker/store/pg/migrations.ts), whose entries mirror the SQLite control
 * file's one for one: the control file holds no telemetry. Append-only.
 *
 * - `id` is an identity column: the order rows were stored in, as SQLite's
 *   rowid is; a log line's id is its batch's id × MAX_LINES_PER_BATCH + its
 *   index, so ids stay below 2^53 / 65 536 (137 billion batches).
 * - The unique (device, seq) key is the dedupe of a redelivered message,
 *   whichever replica it reaches (INSERT … ON CONFLICT DO NOTHING), and a
 *   device's storage order.
 * - Text keys are COLLATE "C", as SQLite compares text by bytes.
 */
export const TELEMETRY_PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE log_batches (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device      text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    received_ms bigint NOT NULL,
    ts_ms       bigint NOT NULL,
    body        text NOT NULL,
    CONSTRAINT log_batches_once UNIQUE (device, seq)
  );

  CREATE TABLE metrics (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device      text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    received_ms bigint NOT NULL,
    ts          text COLLATE "C" NOT NULL,
    ts_ms       bigint NOT NULL,
    body        text NOT NULL,
    CONSTRAINT metrics_once UNIQUE (device, seq)
  );

  CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device      text COLLATE "C" NOT NULL,
    seq         bigint NOT NULL,
    received_ms bigint NOT NULL,
    ts          text COLLATE "C" NOT NULL,
    ts_ms       bigint NOT NULL,
    type        text COLLATE "C" NOT NULL,
    app         text COLLATE "C",
    container   text COLLATE "C",
    message     text NOT NULL,
    CONSTRAINT events_once UNIQUE (device, seq)
  );
  CREATE INDEX events_by_time ON events (ts_ms);
  `,
];

/** Where the telemetry schema's version is kept (migratePostgres' ledger). */
export const TELEMETRY_SCHEMA = { versionTable: 'telemetry_schema_version', name: 'telemetry' } as const;
