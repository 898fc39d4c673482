/**
 * Schema of the telemetry file (`telemetry.db`), kept apart from the control
 * data (`hub.db`): its size is what retention bounds, it takes the high write
 * rate, and losing it never loses an app or a device. Append-only, like the
 * control data's migrations.
 *
 * `id` is the order rows were stored in (a follower's cursor, and retention's
 * oldest-first order); `received_ms` is the hub's clock (retention by age must
 * not trust a device clock); `ts`/`ts_ms` are the device's or Docker's time,
 * for display and `--since`.
 */
export const TELEMETRY_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE logs (
    id          INTEGER PRIMARY KEY,
    device      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    ts          TEXT NOT NULL,
    ts_ms       INTEGER NOT NULL,
    app         TEXT NOT NULL,
    container   TEXT NOT NULL,
    stream      TEXT NOT NULL,
    line        TEXT NOT NULL,
    truncated   INTEGER,
    suppressed  INTEGER
  );
  CREATE UNIQUE INDEX logs_once ON logs (device, seq, n);
  CREATE INDEX logs_by_time ON logs (device, ts_ms);

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
  CREATE INDEX metrics_by_time ON metrics (device, ts_ms);

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
