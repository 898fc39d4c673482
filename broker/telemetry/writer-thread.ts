/**
 * The writer thread: owns the telemetry file's write connection, commits the
 * batches the ingest sends (one transaction each, in the order they came) and
 * runs retention's deletes between them. The hub's own thread keeps a
 * connection that only reads: WAL lets it read while this one commits.
 *
 * Protocol with writer.ts (messages in both directions are in order):
 *   in:  { type: 'write', rows }     → out: { type: 'written', ids } | { type: 'failed', message }
 *   in:  { type: 'close' }           → retention stopped, file closed, thread ends
 *   out: { type: 'log', level, fields, message } — retention's log lines, for the hub's logger
 *
 * A failed commit (full disk, broken file) is answered `failed` and the
 * thread goes on with the next batch; anything thrown past that ends the
 * thread, which writer.ts reports and restarts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Retention } from './retention.js';
import { RowWriter, type TelemetryRow } from './rows.js';

export interface WriterThreadData {
  file: string;
  /** Absent: no retention (a file someone else trims, or a test's). */
  retention?: { maxAgeMs: number; maxBytes: number; intervalMs: number };
}

export type ToWriterThread = { type: 'write'; rows: TelemetryRow[] } | { type: 'close' };
export type FromWriterThread =
  | { type: 'written'; ids: Float64Array }
  | { type: 'failed'; message: string }
  | { type: 'log'; level: 'info' | 'error'; fields: object; message: string };

const port = parentPort;
if (!port) throw new Error('writer-thread.ts runs as a worker thread (writer.ts starts it)');
const data = workerData as WriterThreadData;
const post = (message: FromWriterThread) => port.postMessage(message);

// The hub's thread opened the file first and brought its schema up to date: this connection only writes rows.
const db = new Database(data.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
const rows = new RowWriter(db);

const retention = data.retention
  ? new Retention({
      store: { db },
      logger: { info: (fields, message) => post({ type: 'log', level: 'info', fields, message }) },
      ...data.retention,
    })
  : undefined;
retention?.start();

port.on('message', (message: ToWriterThread) => {
  if (message.type === 'close') return void close();
  try {
    const ids = rows.writeBatch(message.rows);
    port.postMessage({ type: 'written', ids } satisfies FromWriterThread, [ids.buffer as ArrayBuffer]);
  } catch (err) {
    post({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  }
});

async function close(): Promise<void> {
  await retention?.stop();
  db.close();
  port?.close();
}
