/**
 * Schema of the telemetry file (`telemetry.db`), kept apart from the control
 * data (`hub.db`): its size is what retention bounds, it takes the high write
 * rate, and losing it never loses an app or a device. Append-only, like the
 * control data's migrations.
 *
 * `id` is the order rows were stored in (a follower's cursor, and retention's
 * oldest-first order); `received_ms` is the hub's clock (retention by age must
 * not trust a device clock); `ts`/`ts_ms` are the device's or Docker's time,
 * for display and `--since`. (Version 1 was reshaped before any release.)
 */
export const TELEMETRY_MIGRATIONS: readonly string[] = [
  // One row per message, not per log line, and one index per table: with many
  // devices interleaving, every commit dirties one page of each device-leading
  // index per device, and SQLite writes each dirty page whole to the WAL. Per
  // line and with a second index, that was ~15 µs per row at 100 rows a commit,
  // against ~1 µs per row for a batch row (bench/telemetry/ingest-costs.ts).
  // The unique (device, seq) index is both the dedup and, since a device's seq
  // only grows, its storage order; \`ts_ms\` is the batch's newest line. \`body\`
  // is the message as the device sent it (validated): stored without re-encoding.
  `
  CREATE TABLE log_batches (
    id          INTEGER PRIMARY KEY,
    device      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    ts_ms       INTEGER NOT NULL,
    body        TEXT NOT NULL
  );
  CREATE UNIQUE INDEX log_batches_once ON log_batches (device, seq);

  CREATE TABLE metrics (
    id          INTEGER PRIMARY KEY,
    device      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    ts          TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    body        TEXT NOT NULL
  );
  CREATE UNIQUE INDEX metrics_once ON metrics (device, seq);

  CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    device      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    ts          TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    type        TEXT NOT NULL,
    app         TEXT,
    container   TEXT,
    message     TEXT NOT NULL
  );
  CREATE UNIQUE INDEX events_once ON events (device, seq);
  CREATE INDEX events_by_time ON events (ts_ms);
  `,
];
