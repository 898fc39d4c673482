/**
 * The telemetry writer thread on a real file: every message is stored once
 * however often it is redelivered, a publisher is released only once its row
 * is committed (another connection already reads it), followers hear only
 * committed rows and in commit order, a thread that dies mid-commit costs
 * nothing, a batch the file refuses is dropped with an error while the next
 * is stored, and closing stores what is queued. Through a real hub: a QoS 1
 * message's PUBACK comes only once the row is on disk.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { TelemetryIngest, WRITES_IN_FLIGHT } from '../../broker/telemetry/ingest.js';
import { TELEMETRY_MIGRATIONS } from '../../broker/telemetry/migrations.js';
import { READER_CACHE_KIB, WRITER_CACHE_KIB } from '../../broker/telemetry/rows.js';
import { TelemetryStore } from '../../broker/telemetry/store.js';
import { ThreadWriter } from '../../broker/telemetry/writer.js';
import { type LogRecord, MAX_LINES_PER_BATCH, type MetricsSample } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState, logLine, metricsSample } from '../support/fixtures.js';
import { startTestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const batch = (seq: number, text = `line ${seq}`) => Buffer.from(JSON.stringify({ seq, lines: [logLine(text)] }));

describe('telemetry writer thread', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** An ingest committing on a writer thread, and a third connection (a separate reader) on the same file. */
  function open(options: { highWaterMessages?: number } = {}) {
    const file = join(scratchDir('flotilla-writer-'), 'telemetry.db');
    const capture = new LogCapture('warn');
    const store = new TelemetryStore(openDatabase(file, TELEMETRY_MIGRATIONS));
    cleanup.add('store', () => store.db.close());
    const writer = new ThreadWriter({ file, logger: capture.logger });
    const ingest = new TelemetryIngest({ store, logger: capture.logger, writer, ...options });
    cleanup.add('ingest', () => ingest.close());
    const reader = new Database(file, { readonly: true });
    cleanup.add('reader', () => reader.close());
    const storedSeqs = (device = 'dev-1') =>
      (reader.prepare('SELECT seq FROM log_batches WHERE device = ? ORDER BY id').pluck().all(device) as number[]).sort((a, b) => a - b);
    return { file, store, writer, ingest, reader, capture, storedSeqs };
  }

  /** Queues a durable message and resolves once its publisher is released (the PUBACK would go now). */
  const accept = (ingest: TelemetryIngest, channel: 'logs' | 'metrics', payload: Buffer, device = 'dev-1') =>
    new Promise<void>((resolve) => ingest.accept(device, channel, payload, () => resolve(), { durable: true }));

  it('stores a message once however often it is redelivered, in one batch or across batches', async () => {
    const { ingest, storedSeqs } = open();
    // The same seqs twice in one batch, then again in later ones.
    await Promise.all([1, 2, 3, 1, 2].map((seq) => accept(ingest, 'logs', batch(seq))));
    await Promise.all([3, 4, 1].map((seq) => accept(ingest, 'logs', batch(seq))));
    await accept(ingest, 'logs', batch(4));

    expect(storedSeqs()).toEqual([1, 2, 3, 4]);
    expect(ingest.counters.stored.logs).toBe(4);
    expect(ingest.counters.duplicates).toBe(5);
  });

  it('releases a publisher only once another connection can read its row', async () => {
    const { ingest, reader } = open();
    const visibleAtRelease: boolean[] = [];
    const find = reader.prepare('SELECT count(*) FROM log_batches WHERE device = ? AND seq = ?').pluck();
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        accept(ingest, 'logs', batch(i + 1)).then(() => visibleAtRelease.push(find.get('dev-1', i + 1) === 1)),
      ),
    );
    expect(visibleAtRelease).toHaveLength(200);
    expect(visibleAtRelease.every(Boolean)).toBe(true);
  });

  it('tells followers only of committed rows, in commit order', async () => {
    const { ingest, reader } = open();
    const heard: LogRecord[] = [];
    const samples: MetricsSample[] = [];
    const uncommitted: number[] = [];
    const rowExists = reader.prepare('SELECT count(*) FROM log_batches WHERE id = ?').pluck();
    ingest.onLogs((records) => {
      for (const r of records) if (rowExists.get(Math.floor(r.id / MAX_LINES_PER_BATCH)) !== 1) uncommitted.push(r.id);
      heard.push(...records);
    });
    ingest.onMetrics((s) => samples.push(...s));
    const sends: Promise<void>[] = [];
    for (let seq = 1; seq <= 300; seq++) {
      sends.push(accept(ingest, 'logs', batch(seq), `dev-${seq % 3}`));
      if (seq % 50 === 0) sends.push(accept(ingest, 'metrics', Buffer.from(JSON.stringify(metricsSample(seq)))));
      if (seq % 40 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(sends);

    expect(uncommitted).toEqual([]);
    expect(heard).toHaveLength(300);
    expect(heard.map((r) => r.line)).toEqual(Array.from({ length: 300 }, (_, i) => `line ${i + 1}`));
    expect(heard.map((r) => r.device)).toEqual(Array.from({ length: 300 }, (_, i) => `dev-${(i + 1) % 3}`));
    const ids = heard.map((r) => r.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(samples.map((s) => s.seq)).toEqual([50, 100, 150, 200, 250, 300]);
    expect(ingest.latest.get('dev-1')?.seq).toBe(300);
  });

  it('loses nothing and stores nothing twice when the thread dies mid-stream, and says so', async () => {
    const { ingest, writer, capture, storedSeqs } = open();
    const firstThread = writer.threadId;
    const released: number[] = [];
    const sends: Promise<void>[] = [];
    for (let seq = 1; seq <= 3000; seq++) {
      sends.push(accept(ingest, 'logs', batch(seq, 'x'.repeat(200))).then(() => void released.push(seq)));
      // The thread dies with a batch just handed to it, twice.
      if (seq === 1000 || seq === 2000) {
        ingest.flush();
        const dying = writer.threadId;
        await writer.terminateThread();
        await waitFor('the thread started again', () => (writer.threadId !== undefined && writer.threadId !== dying ? true : undefined));
      }
    }
    await Promise.all(sends);

    expect(released).toHaveLength(3000);
    expect(storedSeqs()).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    expect(capture.matching('telemetry writer thread stopped; starting it again').length).toBeGreaterThanOrEqual(2);
    expect(writer.threadId).not.toBe(firstThread);
  });

  it('drops a batch the file refuses with an error, and stores the next one', async () => {
    const { ingest, file, capture, reader } = open();
    // The thread is up and has written: the table goes from under its prepared statement.
    await accept(ingest, 'metrics', Buffer.from(JSON.stringify(metricsSample(1))));
    const other = new Database(file);
    other.exec('DROP TABLE log_batches');
    other.close();

    await accept(ingest, 'logs', batch(1));
    await capture.waitFor('storing telemetry failed; batch dropped');
    await accept(ingest, 'metrics', Buffer.from(JSON.stringify(metricsSample(2))));

    expect(reader.prepare('SELECT count(*) FROM metrics').pluck().get()).toBe(2);
    expect(ingest.counters.stored.metrics).toBe(2);
    expect(capture.matching('telemetry writer thread stopped; starting it again')).toEqual([]);
  });

  it('hands the thread the next batch while it commits one, and releases each publisher only after its own commit', async () => {
    const { ingest, writer, reader } = open();
    // Counts, at each write, how many the thread holds unanswered (the real thread does the work).
    let unanswered = 0;
    const heldAtWrite: number[] = [];
    const write = writer.write.bind(writer);
    writer.write = (rows, done) => {
      heldAtWrite.push(unanswered++);
      write(rows, (outcome) => {
        unanswered--;
        done(outcome);
      });
    };
    const find = reader.prepare('SELECT count(*) FROM log_batches WHERE device = ? AND seq = ?').pluck();
    const releasedUncommitted: number[] = [];
    const releaseOrder: number[] = [];
    const sends: Promise<void>[] = [];
    // Three batches in a row, no wait between them: the third must wait for the first answer.
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i <= 400; i++) {
        const seq = round * 400 + i;
        sends.push(
          accept(ingest, 'logs', batch(seq, 'x'.repeat(100))).then(() => {
            if (find.get('dev-1', seq) !== 1) releasedUncommitted.push(seq);
            releaseOrder.push(seq);
          }),
        );
      }
      ingest.flush();
    }
    await Promise.all(sends);

    expect(heldAtWrite.slice(0, 2)).toEqual([0, 1]);
    expect(Math.max(...heldAtWrite)).toBe(WRITES_IN_FLIGHT - 1);
    expect(releasedUncommitted).toEqual([]);
    expect(releaseOrder).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
  });

  it('loses nothing and stores nothing twice when the thread dies holding two batches', async () => {
    const { ingest, writer, storedSeqs } = open();
    const sends: Promise<void>[] = [];
    for (let round = 0; round < 2; round++) {
      for (let i = 1; i <= 1000; i++) sends.push(accept(ingest, 'logs', batch(round * 1000 + i, 'y'.repeat(200))));
      ingest.flush();
    }
    await writer.terminateThread();
    await Promise.all(sends);

    expect(storedSeqs()).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(ingest.counters.stored.logs).toBe(2000);
  });

  it('keeps a small page cache on the connection that only reads, a large one on a connection that writes', async () => {
    const { store } = open();
    // The hub's own connection reads while the thread writes: SQLite's default, not better-sqlite3's 16 MiB.
    expect(store.db.pragma('cache_size', { simple: true })).toBe(-READER_CACHE_KIB);
    const seeded = new TelemetryStore(openDatabase(join(scratchDir('flotilla-writer-'), 'telemetry.db'), TELEMETRY_MIGRATIONS));
    cleanup.add('seeded store', () => seeded.db.close());
    seeded.insertLogs('dev-1', { seq: 1, lines: [logLine('x')] }, Date.now());
    expect(seeded.db.pragma('cache_size', { simple: true })).toBe(-WRITER_CACHE_KIB);
    expect(READER_CACHE_KIB).toBeLessThan(WRITER_CACHE_KIB);
  });

  it('stores what is queued when it closes, and ends the thread', async () => {
    const { ingest, writer, storedSeqs } = open();
    // Not durable: released at once, so only the close stands between these and the file.
    for (let seq = 1; seq <= 500; seq++) ingest.accept('dev-1', 'logs', batch(seq), () => undefined);
    await ingest.close();

    expect(storedSeqs()).toHaveLength(500);
    expect(writer.threadId).toBeUndefined();
  });
});

describe('telemetry through a hub with its writer thread', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers PUBACK for a QoS 1 message only once its row is on disk', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const device = await connectClient(hub.mqttUrl, { clientId: 'dev-1' });
    cleanup.add('device', () => closeClient(device));
    await device.publishAsync('flotilla/v1/devices/dev-1/state', JSON.stringify(deviceState('dev-1')), { qos: 1, retain: true });
    const reader = new Database(join(hub.dataDir, 'telemetry.db'), { readonly: true });
    cleanup.add('reader', () => reader.close());
    const find = reader.prepare('SELECT count(*) FROM log_batches WHERE device = ? AND seq = ?').pluck();

    const onDiskAtPuback: boolean[] = [];
    for (let seq = 1; seq <= 20; seq++) {
      await device.publishAsync('flotilla/v1/devices/dev-1/logs', batch(seq), { qos: 1 });
      onDiskAtPuback.push(find.get('dev-1', seq) === 1);
    }
    expect(onDiskAtPuback).toEqual(Array(20).fill(true));
    await waitFor('nothing else stored', () =>
      reader.prepare('SELECT count(*) FROM log_batches').pluck().get() === 20 ? true : undefined,
    );
  });
});
