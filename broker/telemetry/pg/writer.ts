/**
 * The ingest's commits into the replicas' shared PostgreSQL database.
 *
 * Invariants (the TelemetryWriter's, writer.ts):
 *   - a batch is one transaction: one INSERT per table, its rows passed as
 *     arrays (unnest), `ON CONFLICT (device, seq) DO NOTHING RETURNING` the
 *     rows stored; a row not returned is DUPLICATE, whichever replica stored
 *     it first, so a message redelivered to another replica after a crash is
 *     stored once;
 *   - `done` is called only after COMMIT, once per write and in the order of
 *     the writes (they run one after another);
 *   - a database out of reach is waited for, the batch tried again with
 *     backoff for up to `retryWindowMs`: a restart of PostgreSQL holds its
 *     publishers' acknowledgements for a few seconds, and no device loses its
 *     session (refusing them at once would disconnect every device sending
 *     telemetry, and they would all reconnect together). Past the window the
 *     whole batch is answered with the error and `redeliver`, so no publisher
 *     is acknowledged and every device sends again. A COMMIT answered by a
 *     dropped connection may have landed: what is tried or sent again is then
 *     a duplicate, stored once;
 *   - any other error drops the batch, as a broken telemetry file does:
 *     trying it again would fail again.
 */

import type { PgDatabase, PgQueryable } from '../../store/pg/database.js';
import { DatabaseUnavailable } from '../../store/pg/errors.js';
import { DUPLICATE, type TelemetryRow, timeMs } from '../rows.js';
import type { TelemetryWriter, WriteOutcome } from '../writer.js';

/** Each INSERT reads its rows in their batch order, so ids follow arrival order as the file's do. */
const INSERT_LOGS = `
  INSERT INTO log_batches (device, seq, received_ms, ts_ms, body)
  SELECT device, seq, received_ms, ts_ms, body
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[])
         WITH ORDINALITY AS r (device, seq, received_ms, ts_ms, body, n)
   ORDER BY n
  ON CONFLICT (device, seq) DO NOTHING
  RETURNING id, device, seq`;

const INSERT_METRICS = `
  INSERT INTO metrics (device, seq, received_ms, ts, ts_ms, body)
  SELECT device, seq, received_ms, ts, ts_ms, body
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[])
         WITH ORDINALITY AS r (device, seq, received_ms, ts, ts_ms, body, n)
   ORDER BY n
  ON CONFLICT (device, seq) DO NOTHING
  RETURNING id, device, seq`;

const INSERT_EVENTS = `
  INSERT INTO events (device, seq, received_ms, ts, ts_ms, type, app, container, message)
  SELECT device, seq, received_ms, ts, ts_ms, type, app, container, message
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[])
         WITH ORDINALITY AS r (device, seq, received_ms, ts, ts_ms, type, app, container, message, n)
   ORDER BY n
  ON CONFLICT (device, seq) DO NOTHING
  RETURNING id, device, seq`;

interface Stored {
  id: number;
  device: string;
  seq: number;
}

export interface PgTelemetryWriterOptions {
  /** How long a batch is tried again while the database is out of reach (default 10 s; keepalives are longer). */
  retryWindowMs?: number;
}

/** Waits between tries of a batch while the database is out of reach. */
const RETRY_BACKOFF_MS = [100, 250, 500, 1000, 2000] as const;

export class PgTelemetryWriter implements TelemetryWriter {
  /** The write in progress and those queued behind it: each starts when the one before is answered. */
  private tail: Promise<void> = Promise.resolve();
  private readonly retryWindowMs: number;

  constructor(
    private readonly db: PgDatabase,
    options: PgTelemetryWriterOptions = {},
  ) {
    this.retryWindowMs = options.retryWindowMs ?? 10_000;
  }

  write(rows: TelemetryRow[], done: (outcome: WriteOutcome) => void): void {
    this.tail = this.tail.then(async () => done(await this.commit(rows)));
  }

  /** Answers the writes in progress; the pool is the hub's, closed with its stores. */
  async close(): Promise<void> {
    await this.tail;
  }

  private async commit(rows: readonly TelemetryRow[]): Promise<WriteOutcome> {
    const giveUpAt = performance.now() + this.retryWindowMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return { ids: await this.db.transaction((tx) => insertBatch(tx, rows)) };
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        if (!(err instanceof DatabaseUnavailable)) return { error, redeliver: false };
        const wait = RETRY_BACKOFF_MS[Math.min(attempt, RETRY_BACKOFF_MS.length - 1)]!;
        if (performance.now() + wait > giveUpAt) return { error, redeliver: true };
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }
}

/** Stores the rows inside the caller's transaction: each one's id, or DUPLICATE. */
export async function insertBatch(tx: PgQueryable, rows: readonly TelemetryRow[]): Promise<Float64Array> {
  const ids = new Float64Array(rows.length);
  const at = { logs: [] as number[], metrics: [] as number[], events: [] as number[] };
  for (let i = 0; i < rows.length; i++) at[rows[i]![0]].push(i);
  if (at.logs.length > 0) {
    const logs = at.logs.map((i) => rows[i] as Extract<TelemetryRow, ['logs', ...unknown[]]>);
    const stored = await tx.query<Stored>(INSERT_LOGS, [
      logs.map((r) => r[1]),
      logs.map((r) => r[2]),
      logs.map((r) => r[3]),
      logs.map((r) => timeMs(r[4], r[3])),
      logs.map((r) => r[5]),
    ]);
    assignIds(ids, rows, at.logs, stored);
  }
  if (at.metrics.length > 0) {
    const metrics = at.metrics.map((i) => rows[i] as Extract<TelemetryRow, ['metrics', ...unknown[]]>);
    const stored = await tx.query<Stored>(INSERT_METRICS, [
      metrics.map((r) => r[1]),
      metrics.map((r) => r[2]),
      metrics.map((r) => r[3]),
      metrics.map((r) => r[4]),
      metrics.map((r) => timeMs(r[4], r[3])),
      metrics.map((r) => r[5]),
    ]);
    assignIds(ids, rows, at.metrics, stored);
  }
  if (at.events.length > 0) {
    const events = at.events.map((i) => rows[i] as Extract<TelemetryRow, ['events', ...unknown[]]>);
    const stored = await tx.query<Stored>(INSERT_EVENTS, [
      events.map((r) => r[1]),
      events.map((r) => r[2]),
      events.map((r) => r[3]),
      events.map((r) => text(r[4])),
      events.map((r) => timeMs(r[4], r[3])),
      events.map((r) => text(r[5])),
      events.map((r) => (r[6] === null ? null : text(r[6]))),
      events.map((r) => (r[7] === null ? null : text(r[7]))),
      events.map((r) => text(r[8])),
    ]);
    assignIds(ids, rows, at.events, stored);
  }
  return ids;
}

/** The first row of a (device, seq) gets its id; a second in the same batch, or one stored before, is DUPLICATE. */
function assignIds(ids: Float64Array, rows: readonly TelemetryRow[], indexes: readonly number[], stored: readonly Stored[]): void {
  const byKey = new Map(stored.map((s) => [`${s.seq}\u0000${s.device}`, s.id]));
  for (const i of indexes) {
    const key = `${rows[i]![2]}\u0000${rows[i]![1]}`;
    const id = byKey.get(key);
    if (id === undefined) {
      ids[i] = DUPLICATE;
      continue;
    }
    ids[i] = id;
    byKey.delete(key);
  }
}

/**
 * A decoded string as PostgreSQL text holds it: text cannot hold U+0000, which
 * a device may send escaped in an event's fields (the message bodies are kept
 * as sent, escaped, and need nothing). Refusing it would refuse the batch on
 * every redelivery; it becomes U+FFFD, as an undecodable byte does.
 */
function text(value: string): string {
  return value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value;
}
