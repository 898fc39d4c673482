/**
 * One suite for stored telemetry, run against every engine (test/integration/
 * telemetry-engine-sqlite and telemetry-engine-postgres): the same rows written
 * through an engine's TelemetryWriter give the same answers through its
 * TelemetryReads (a job's lines and events kept apart from an app's of the same
 * name alike), a redelivered (device, seq) is stored once — also when two
 * handles (two hubs' connections, two replicas' pools) write it at once — and
 * retention by age deletes what arrived before the cutoff and nothing else.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TelemetryReads } from '../../broker/telemetry/reads.js';
import { DUPLICATE, type TelemetryRow } from '../../broker/telemetry/rows.js';
import { eventRow, logRow, metricsRow } from '../../broker/telemetry/store.js';
import type { TelemetryWriter } from '../../broker/telemetry/writer.js';
import { type DeviceEvent, type LogBatch, type LogRecord, MAX_LINES_PER_BATCH } from '../../shared/index.js';
import { Cleanup } from './cleanup.js';
import { logLine, metricsSample } from './fixtures.js';

export interface TelemetryHandle {
  writer: TelemetryWriter;
  reads: TelemetryReads;
  /** One retention pass by age at `nowMs`: how many rows it deleted. */
  trimByAge(maxAgeMs: number, nowMs: number): Promise<number>;
}

/** Opens a handle on one store's rows; every call is another handle (connection, pool) on the same rows. */
export type OpenTelemetry = () => Promise<TelemetryHandle>;

export interface TelemetryEngine {
  /** A new empty store; what it opens is released by `cleanup`. */
  create(cleanup: Cleanup): Promise<OpenTelemetry>;
}

const T0 = Date.parse('2026-03-01T00:00:00.000Z');
const RECEIVED = T0 + 3_600_000;
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

/** Commits rows through a writer: each row's id, or DUPLICATE. */
export function write(writer: TelemetryWriter, rows: TelemetryRow[]): Promise<Float64Array> {
  return new Promise((resolve, reject) =>
    writer.write(rows, (outcome) => ('error' in outcome ? reject(outcome.error) : resolve(outcome.ids))),
  );
}

/** `batches` batches of `perBatch` lines; line n (from 0) is stamped T0 + n s and says `${device} n`, every third of app relay. */
function logBatches(device: string, batches: number, perBatch: number): LogBatch[] {
  return Array.from({ length: batches }, (_, b) => ({
    seq: b + 1,
    lines: Array.from({ length: perBatch }, (_, i) => {
      const n = b * perBatch + i;
      return logLine(`${device} ${n}`, { ts: at(n), ...(n % 3 === 2 ? { app: 'relay' } : {}) });
    }),
  }));
}

function event(seq: number, overrides: Partial<DeviceEvent> = {}): DeviceEvent {
  return { seq, ts: at(seq * 10), type: 'started', app: 'thermo', container: 'probe', message: `event ${seq}`, ...overrides };
}

const texts = (records: readonly LogRecord[]) => records.map((r) => r.line);

export function telemetrySuite(engineName: string, engine: TelemetryEngine): void {
  describe(`stored telemetry on ${engineName}`, () => {
    const cleanup = new Cleanup();
    let open: OpenTelemetry;
    let t: TelemetryHandle;

    beforeEach(async () => {
      open = await engine.create(cleanup);
      t = await open();
    });
    afterEach(() => cleanup.run());

    /** dev-1's and dev-2's batches, written interleaved (their ids interleave, as two devices' do), 2 batches a commit. */
    async function writeLogs(batches = 6, perBatch = 4): Promise<{ one: string[]; two: string[] }> {
      const one = logBatches('dev-1', batches, perBatch);
      const two = logBatches('dev-2', batches, perBatch);
      for (let b = 0; b < batches; b += 2) {
        const rows = [one[b]!, two[b]!, one[b + 1], two[b + 1]]
          .filter((batch): batch is LogBatch => batch !== undefined)
          .map((batch, i) => logRow(i % 2 === 0 ? 'dev-1' : 'dev-2', batch, RECEIVED, JSON.stringify(batch)));
        await write(t.writer, rows);
      }
      const lines = (all: LogBatch[]) => all.flatMap((batch) => batch.lines.map((l) => l.line));
      return { one: lines(one), two: lines(two) };
    }

    it('answers the newest lines of a device with tail, oldest first, across batches', async () => {
      const { one } = await writeLogs();
      expect(texts(await t.reads.queryLogs({ device: 'dev-1', tail: 6, limit: 100 }))).toEqual(one.slice(-6));
      expect(texts(await t.reads.queryLogs({ device: 'dev-1', tail: 100, limit: 5 }))).toEqual(one.slice(-5));
      expect(await t.reads.queryLogs({ device: 'dev-9', tail: 5, limit: 100 })).toEqual([]);
    });

    it('reads a window from since, and afterId pages on to its end with every line once, ids by batch and index', async () => {
      const { one } = await writeLogs();
      const sinceMs = T0 + 5_000;
      const pages: LogRecord[][] = [await t.reads.queryLogs({ device: 'dev-1', sinceMs, limit: 4 })];
      while (pages.at(-1)!.length > 0) {
        pages.push(await t.reads.queryLogs({ device: 'dev-1', sinceMs, afterId: pages.at(-1)!.at(-1)!.id, limit: 4 }));
      }
      const all = pages.flat();
      expect(texts(all)).toEqual(one.slice(5));
      expect(pages[0]!.length).toBe(4);
      // Ids grow, and a line's id is its batch's id × MAX_LINES_PER_BATCH + its index (4 lines a batch).
      for (let i = 1; i < all.length; i++) expect(all[i]!.id).toBeGreaterThan(all[i - 1]!.id);
      expect(all.map((r) => r.id % MAX_LINES_PER_BATCH)).toEqual(all.map((_, k) => (5 + k) % 4));
      expect(new Set(all.map((r) => Math.floor(r.id / MAX_LINES_PER_BATCH))).size).toBe(5);
    });

    it('ends a window at until, inclusive, also inside a batch, reading back and forward', async () => {
      const { one } = await writeLogs();
      const untilMs = T0 + 9_000;
      expect(texts(await t.reads.queryLogs({ device: 'dev-1', untilMs, tail: 3, limit: 100 }))).toEqual(one.slice(7, 10));
      expect(texts(await t.reads.queryLogs({ device: 'dev-1', sinceMs: T0 + 2_000, untilMs, limit: 100 }))).toEqual(one.slice(2, 10));
      expect(texts(await t.reads.queryLogs({ device: 'dev-1', untilMs: T0 - 1, tail: 3, limit: 100 }))).toEqual([]);
    });

    it("keeps one app's lines", async () => {
      const { two } = await writeLogs();
      const relay = await t.reads.queryLogs({ device: 'dev-2', app: 'relay', tail: 100, limit: 100 });
      expect(texts(relay)).toEqual(two.filter((_, n) => n % 3 === 2));
      expect(relay.every((r) => r.app === 'relay' && r.device === 'dev-2')).toBe(true);
    });

    it("keeps a job's lines apart from an app's of the same name", async () => {
      const batch: LogBatch = {
        seq: 1,
        lines: [
          logLine('app line', { ts: at(1), app: 'backup' }),
          logLine('job line', { ts: at(2), app: 'backup', job: true }),
          logLine('other job', { ts: at(3), app: 'rotate', job: true }),
        ],
      };
      await write(t.writer, [logRow('dev-1', batch, RECEIVED, JSON.stringify(batch))]);
      const lines = async (owner: { app?: string; job?: string }) =>
        texts(await t.reads.queryLogs({ device: 'dev-1', ...owner, tail: 100, limit: 100 }));
      expect(await lines({ job: 'backup' })).toEqual(['job line']);
      expect(await lines({ app: 'backup' })).toEqual(['app line']);
      expect(await lines({})).toEqual(['app line', 'job line', 'other job']);
    });

    it('answers events by device, app, window, tail and afterId, in storage order', async () => {
      const rows = [
        eventRow('dev-1', event(1), RECEIVED),
        eventRow('dev-2', event(1, { app: 'relay' }), RECEIVED),
        eventRow('dev-1', event(2, { type: 'health-failed' }), RECEIVED),
        eventRow('dev-1', event(3, { app: undefined, container: undefined, message: 'no app' }), RECEIVED),
        eventRow('dev-2', event(2), RECEIVED),
      ];
      await write(t.writer, rows.slice(0, 2));
      await write(t.writer, rows.slice(2));
      const all = await t.reads.queryEvents({ limit: 100 });
      expect(all.map((e) => `${e.device}:${e.seq}`)).toEqual(['dev-1:1', 'dev-2:1', 'dev-1:2', 'dev-1:3', 'dev-2:2']);
      expect(all[3]).toEqual({ id: all[3]!.id, device: 'dev-1', seq: 3, ts: at(30), type: 'started', message: 'no app' });
      expect(all[2]).toEqual({
        id: all[2]!.id,
        device: 'dev-1',
        seq: 2,
        ts: at(20),
        type: 'health-failed',
        app: 'thermo',
        container: 'probe',
        message: 'event 2',
      });

      const seqs = (events: { device: string; seq: number }[]) => events.map((e) => `${e.device}:${e.seq}`);
      expect(seqs(await t.reads.queryEvents({ device: 'dev-1', limit: 100 }))).toEqual(['dev-1:1', 'dev-1:2', 'dev-1:3']);
      expect(seqs(await t.reads.queryEvents({ app: 'relay', limit: 100 }))).toEqual(['dev-2:1']);
      expect(seqs(await t.reads.queryEvents({ sinceMs: T0 + 20_000, untilMs: T0 + 20_000, limit: 100 }))).toEqual(['dev-1:2', 'dev-2:2']);
      expect(seqs(await t.reads.queryEvents({ tail: 2, limit: 100 }))).toEqual(['dev-1:3', 'dev-2:2']);
      expect(seqs(await t.reads.queryEvents({ afterId: all[1]!.id, limit: 2 }))).toEqual(['dev-1:2', 'dev-1:3']);
      expect(seqs(await t.reads.queryEvents({ device: 'dev-2', afterId: all[0]!.id, tail: 1, limit: 100 }))).toEqual(['dev-2:2']);
    });

    it("keeps a job's events apart from an app's of the same name, with device, tail and afterId", async () => {
      const rows = [
        eventRow('dev-1', event(1, { app: 'backup', type: 'started' }), RECEIVED),
        eventRow('dev-1', event(2, { app: 'backup', type: 'job-queued', container: undefined }), RECEIVED),
        eventRow('dev-2', event(1, { app: 'backup', type: 'job-started', container: undefined }), RECEIVED),
        eventRow('dev-1', event(3, { app: 'rotate', type: 'job-succeeded', container: undefined }), RECEIVED),
        eventRow('dev-1', event(4, { app: 'backup', type: 'health-failed' }), RECEIVED),
        // A type that only looks like a job's: the prefix is compared exactly, case and all.
        eventRow('dev-1', event(5, { app: 'backup', type: 'Job-queued' }), RECEIVED),
        eventRow('dev-2', event(2, { app: 'backup', type: 'job-succeeded', container: undefined }), RECEIVED),
      ];
      await write(t.writer, rows);
      const all = await t.reads.queryEvents({ limit: 100 });
      const seqs = async (q: { device?: string; app?: string; job?: string; tail?: number; afterId?: number }) =>
        (await t.reads.queryEvents({ ...q, limit: 100 })).map((e) => `${e.device}:${e.seq} ${e.type}`);
      expect(await seqs({ job: 'backup' })).toEqual(['dev-1:2 job-queued', 'dev-2:1 job-started', 'dev-2:2 job-succeeded']);
      expect(await seqs({ app: 'backup' })).toEqual(['dev-1:1 started', 'dev-1:4 health-failed', 'dev-1:5 Job-queued']);
      expect(await seqs({ job: 'backup', device: 'dev-2', tail: 1 })).toEqual(['dev-2:2 job-succeeded']);
      expect(await seqs({ job: 'backup', afterId: all[1]!.id })).toEqual(['dev-2:1 job-started', 'dev-2:2 job-succeeded']);
      expect(await seqs({ job: 'rotate' })).toEqual(['dev-1:3 job-succeeded']);
      expect(await seqs({ app: 'rotate' })).toEqual([]);
      expect(await seqs({})).toHaveLength(rows.length);
    });

    it('answers samples by tail and since, the newest of each device, and recent host figures per device', async () => {
      const sample = (seq: number) => metricsSample(seq, { ts: at(seq * 60) });
      for (let seq = 1; seq <= 5; seq++) {
        const one = sample(seq);
        one.host.cpuPercent = seq;
        const two = sample(seq);
        two.host.cpuPercent = 10 * seq;
        await write(t.writer, [
          metricsRow('dev-1', one, RECEIVED, JSON.stringify(one)),
          metricsRow('dev-2', two, RECEIVED, JSON.stringify(two)),
        ]);
      }
      const seqsOf = (samples: { seq: number }[]) => samples.map((s) => s.seq);
      expect(seqsOf(await t.reads.queryMetrics({ device: 'dev-1', tail: 2, limit: 100 }))).toEqual([4, 5]);
      expect(seqsOf(await t.reads.queryMetrics({ device: 'dev-1', sinceMs: T0 + 180_000, limit: 100 }))).toEqual([3, 4, 5]);
      expect(seqsOf(await t.reads.queryMetrics({ device: 'dev-1', sinceMs: T0, limit: 2 }))).toEqual([4, 5]);
      const newest = await t.reads.queryMetrics({ device: 'dev-2', tail: 1, limit: 100 });
      expect(newest).toEqual([{ device: 'dev-2', ...sample(5), host: { ...sample(5).host, cpuPercent: 50 } }]);

      const latest = (await t.reads.latestMetrics()).sort((a, b) => a.device.localeCompare(b.device));
      expect(latest.map((s) => [s.device, s.seq, s.host.cpuPercent])).toEqual([
        ['dev-1', 5, 5],
        ['dev-2', 5, 50],
      ]);

      const recent = await t.reads.recentHostMetrics(2, 1000);
      expect(recent.map((r) => [r.device, r.host.cpuPercent])).toEqual([
        ['dev-1', 4],
        ['dev-2', 40],
        ['dev-1', 5],
        ['dev-2', 50],
      ]);
      expect(recent[0]!.host).toEqual({
        cpuPercent: 4,
        memUsedBytes: sample(4).host.memUsedBytes,
        memTotalBytes: sample(4).host.memTotalBytes,
        disks: sample(4).host.disks,
      });
      // Only the newest 3 rows stored are read.
      expect((await t.reads.recentHostMetrics(2, 3)).map((r) => [r.device, r.host.cpuPercent])).toEqual([
        ['dev-2', 40],
        ['dev-1', 5],
        ['dev-2', 50],
      ]);
    });

    it('stores a redelivered (device, seq) once, in a later batch or twice in one', async () => {
      const batch = logBatches('dev-1', 2, 2);
      const logs = batch.map((b) => logRow('dev-1', b, RECEIVED, JSON.stringify(b)));
      const events = [eventRow('dev-1', event(1), RECEIVED)];
      const first = await write(t.writer, [logs[0]!, events[0]!, logs[0]!]);
      expect(first[0]).not.toBe(DUPLICATE);
      expect(first[1]).not.toBe(DUPLICATE);
      expect(first[2]).toBe(DUPLICATE);

      const again = await write(t.writer, [events[0]!, logs[1]!, logs[0]!]);
      expect([again[0], again[2]]).toEqual([DUPLICATE, DUPLICATE]);
      expect(again[1]).not.toBe(DUPLICATE);

      expect(texts(await t.reads.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 100 }))).toEqual([
        'dev-1 0',
        'dev-1 1',
        'dev-1 2',
        'dev-1 3',
      ]);
      expect((await t.reads.queryEvents({ limit: 100 })).length).toBe(1);
    });

    it('stores a (device, seq) once when two handles write it at once, answering one of them with its id', async () => {
      const other = await open();
      const batches = logBatches('dev-1', 40, 1);
      const rows = batches.map((b) => logRow('dev-1', b, RECEIVED, JSON.stringify(b)));
      // Each writes every row, in four commits, both at once (as two replicas that both got a redelivery).
      const commits = (writer: TelemetryWriter) =>
        Promise.all([0, 10, 20, 30].map((from) => write(writer, rows.slice(from, from + 10)))).then((parts) =>
          parts.flatMap((ids) => [...ids]),
        );
      const [a, b] = await Promise.all([commits(t.writer), commits(other.writer)]);
      const storedBy = rows.map((_, i) => [a[i] !== DUPLICATE, b[i] !== DUPLICATE].filter(Boolean).length);
      expect(storedBy).toEqual(rows.map(() => 1));
      const lines = texts(await other.reads.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 100 }));
      expect(lines).toHaveLength(40);
      expect(new Set(lines).size).toBe(40);
    });

    it('deletes by age the rows that arrived before the cutoff, of every table, and keeps the rest', async () => {
      const day = 86_400_000;
      const old = RECEIVED - 8 * day;
      const batches = logBatches('dev-1', 3, 1);
      await write(t.writer, [
        logRow('dev-1', batches[0]!, old, JSON.stringify(batches[0])),
        eventRow('dev-1', event(1), old),
        metricsRow('dev-1', metricsSample(1), old, JSON.stringify(metricsSample(1))),
      ]);
      await write(t.writer, [
        logRow('dev-1', batches[1]!, RECEIVED, JSON.stringify(batches[1])),
        logRow('dev-1', batches[2]!, RECEIVED - 6 * day, JSON.stringify(batches[2])),
        eventRow('dev-1', event(2), RECEIVED),
        metricsRow('dev-1', metricsSample(2), RECEIVED, JSON.stringify(metricsSample(2))),
      ]);

      expect(await t.trimByAge(7 * day, RECEIVED)).toBe(3);

      expect(texts(await t.reads.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 100 }))).toEqual(['dev-1 1', 'dev-1 2']);
      expect((await t.reads.queryEvents({ limit: 100 })).map((e) => e.seq)).toEqual([2]);
      expect((await t.reads.latestMetrics()).map((s) => s.seq)).toEqual([2]);
      expect(await t.trimByAge(7 * day, RECEIVED)).toBe(0);
    });
  });
}
