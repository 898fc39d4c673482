/**
 * Where the ingest's batches are committed: on the hub's own thread
 * (`InlineWriter`: tests, tools) or on a worker thread that owns the
 * telemetry file's write connection (`ThreadWriter`, the hub's), so SQLite's
 * work runs on the second core instead of the broker's event loop.
 *
 * Invariants the ingest relies on, for both:
 *   - `done` is called once per write, in the order of the writes, and only
 *     after the commit (or with the error that dropped the batch);
 *   - a write is all or nothing (one transaction), and writing the same rows
 *     again stores nothing twice (INSERT OR IGNORE on (device, seq)).
 *
 * A writer thread that dies is reported, started again, and sent the writes
 * it had not answered: one that committed before dying comes back as
 * duplicates, one that did not is committed now. Nothing is acknowledged
 * that is not committed. A write the thread fails on MAX_ATTEMPTS times is
 * dropped with an error, as a full disk drops one; restarts back off so a
 * file that cannot be opened does not spin the hub.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Db } from '../store/sqlite/db.js';
import { RowWriter, type TelemetryRow } from './rows.js';
import type { FromWriterThread, ToWriterThread, WriterThreadData } from './writer-thread.js';

/**
 * Each row's id, or the error that dropped them. `redeliver`: nothing may have
 * been stored and the store is expected back (a database out of reach), so the
 * publishers are refused rather than acknowledged, and their devices send again.
 */
export type WriteOutcome = { ids: Float64Array } | { error: Error; redeliver?: boolean };

export interface TelemetryWriter {
  /** Commits the rows in one transaction; `done` gets each row's id (DUPLICATE when already stored) or the error that dropped them. */
  write(rows: TelemetryRow[], done: (outcome: WriteOutcome) => void): void;
  /** Answers the writes in progress, then lets go of the file. */
  close(): Promise<void>;
}

/** Commits on the caller's thread, before `write` returns. */
export class InlineWriter implements TelemetryWriter {
  private readonly rows: RowWriter;

  constructor(db: Db) {
    this.rows = new RowWriter(db);
  }

  write(rows: TelemetryRow[], done: (outcome: WriteOutcome) => void): void {
    let outcome: WriteOutcome;
    try {
      outcome = { ids: this.rows.writeBatch(rows) };
    } catch (err) {
      outcome = { error: err instanceof Error ? err : new Error(String(err)) };
    }
    done(outcome);
  }

  async close(): Promise<void> {}
}

/** Tries per write before it is dropped: the thread died this often while it held it. */
const MAX_ATTEMPTS = 3;
const RESTART_BACKOFF_MS = [0, 100, 1000, 5000] as const;

interface InFlight {
  rows: TelemetryRow[];
  done: (outcome: WriteOutcome) => void;
  /** Times the thread died while this was the write it was committing. */
  attempts: number;
}

export interface ThreadWriterOptions extends WriterThreadData {
  logger: Logger;
}

export class ThreadWriter implements TelemetryWriter {
  /** Sent and not yet answered, oldest first: the thread answers in order. */
  private readonly inFlight: InFlight[] = [];
  private thread: Worker | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private failuresInARow = 0;
  private closing: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  private readonly log: Logger;

  constructor(private readonly options: ThreadWriterOptions) {
    this.log = options.logger.child({ component: 'telemetry-writer' });
    this.start();
  }

  /** The running thread's id (changes when it is started again). */
  get threadId(): number | undefined {
    return this.thread?.threadId;
  }

  write(rows: TelemetryRow[], done: (outcome: WriteOutcome) => void): void {
    const item: InFlight = { rows, done, attempts: 0 };
    this.inFlight.push(item);
    if (this.thread) this.send(this.thread, item);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.inFlight.length > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      clearTimeout(this.restartTimer);
      const thread = this.thread;
      this.thread = undefined;
      if (!thread) return;
      const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
      // Held now: the process waits for the thread to close the file.
      thread.ref();
      thread.postMessage({ type: 'close' } satisfies ToWriterThread);
      await exited;
    })();
    return this.closing;
  }

  /** Ends the thread at once, as a crash would (how tests check that nothing is lost when it dies). */
  async terminateThread(): Promise<void> {
    await this.thread?.terminate();
  }

  private start(): void {
    const { file, retention } = this.options;
    const thread = new Worker(threadEntry(), {
      eval: true,
      workerData: { file, ...(retention ? { retention } : {}) } satisfies WriterThreadData,
      // Node's options (a --cpu-prof of the hub's) are the hub's alone.
      execArgv: [],
    });
    // The hub's closer ends it; a thread must never be what keeps a process alive.
    thread.unref();
    thread.on('message', (message: FromWriterThread) => this.answer(message));
    thread.on('error', (err) => this.log.error({ err }, 'telemetry writer thread failed'));
    thread.on('exit', (code) => this.exited(thread, code));
    this.thread = thread;
    for (const item of this.inFlight) this.send(thread, item);
  }

  private send(thread: Worker, item: InFlight): void {
    thread.postMessage({ type: 'write', rows: item.rows } satisfies ToWriterThread);
  }

  private answer(message: FromWriterThread): void {
    if (message.type === 'log') {
      this.log[message.level](message.fields, message.message);
      return;
    }
    const item = this.inFlight.shift();
    if (!item) return;
    this.failuresInARow = 0;
    item.done(message.type === 'written' ? { ids: message.ids } : { error: new Error(message.message) });
    if (this.inFlight.length === 0) this.drained?.();
  }

  private exited(thread: Worker, code: number): void {
    if (thread !== this.thread) return;
    this.thread = undefined;
    this.failuresInARow++;
    const held = this.inFlight.length;
    this.log.error({ exitCode: code, unanswered: held }, 'telemetry writer thread stopped; starting it again');
    // The oldest write is the one the thread was committing: it alone counts an attempt.
    const oldest = this.inFlight[0];
    if (oldest && ++oldest.attempts >= MAX_ATTEMPTS) {
      this.inFlight.shift();
      oldest.done({ error: new Error(`the telemetry writer thread stopped ${oldest.attempts} times while committing this batch`) });
      if (this.inFlight.length === 0) this.drained?.();
    }
    const delay = RESTART_BACKOFF_MS[Math.min(this.failuresInARow - 1, RESTART_BACKOFF_MS.length - 1)]!;
    this.restartTimer = setTimeout(() => this.start(), delay);
  }
}

/**
 * The thread's first lines: import its module, which is the bundle's own
 * entry (`dist/cli/telemetry-writer.js`, build.mjs; this file is then in
 * `dist/cli/` or its chunks), or beside this one in a checkout: TypeScript,
 * loaded through tsx as the hub itself is (the hub's tsx hooks do not reach
 * a thread, so it registers its own).
 */
function threadEntry(): string {
  for (const candidate of ['./writer-thread.js', './telemetry-writer.js', '../telemetry-writer.js']) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(fileURLToPath(url))) return `import(${JSON.stringify(url.href)});`;
  }
  const tsx = pathToFileURL(tsxEsmApi()).href;
  const entry = new URL('./writer-thread.ts', import.meta.url).href;
  return `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
}

/** tsx's ESM register API (`tsx/esm/api` as `import` resolves it; require.resolve would give the CommonJS twin). */
function tsxEsmApi(): string {
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return join(dirname(manifest), pkg.exports['./esm/api']!.import.default);
}
