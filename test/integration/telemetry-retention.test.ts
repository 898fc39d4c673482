/**
 * Retention on a real telemetry file: rows older than the age bound go, the
 * file's used size is brought under the size bound by deleting the oldest
 * rows, and a long pass deletes in chunks so ingest keeps committing while it
 * runs.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { TelemetryIngest } from '../../broker/telemetry/ingest.js';
import { TELEMETRY_MIGRATIONS } from '../../broker/telemetry/migrations.js';
import { Retention } from '../../broker/telemetry/retention.js';
import { TelemetryStore } from '../../broker/telemetry/store.js';
import { logLine } from '../support/fixtures.js';
import { scratchDir } from '../support/scratch.js';

const logger = pino({ level: 'silent' });
const DAY = 86_400_000;
const NOW = Date.parse('2026-11-28T12:00:00Z');

describe('telemetry retention', () => {
  let store: TelemetryStore;

  beforeEach(() => {
    store = new TelemetryStore(openDatabase(join(scratchDir('flotilla-retention-'), 'telemetry.db'), TELEMETRY_MIGRATIONS));
  });

  afterEach(() => {
    store.db.close();
  });

  /** `count` one-line batches from dev-1, arrived at `receivedMs`. */
  function storeLines(count: number, receivedMs: number, firstSeq: number, text = 'x'.repeat(100)): void {
    store.db.transaction(() => {
      for (let i = 0; i < count; i++)
        store.insertLogs('dev-1', { seq: firstSeq + i, lines: [logLine(`${firstSeq + i} ${text}`)] }, receivedMs);
    })();
  }

  const countLogs = () => (store.db.prepare('SELECT COUNT(*) AS n FROM log_batches').get() as { n: number }).n;

  it('deletes rows older than the age bound, by arrival time, and keeps the rest', async () => {
    storeLines(50, NOW - 8 * DAY, 1);
    storeLines(30, NOW - 1 * DAY, 1000);
    store.insertEvent('dev-1', { seq: 1, ts: new Date(NOW).toISOString(), type: 'started', message: 'old' }, NOW - 9 * DAY);
    store.insertEvent('dev-1', { seq: 2, ts: new Date(NOW).toISOString(), type: 'started', message: 'new' }, NOW);
    const retention = new Retention({ store, logger, maxAgeMs: 7 * DAY, maxBytes: 1024 ** 3, chunkRows: 7, now: () => NOW });

    const pass = await retention.runOnce();

    expect(pass.deletedByAge).toBe(51);
    expect(countLogs()).toBe(30);
    expect(store.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 1 })[0]!.line).toMatch(/^1000 /);
    expect(store.queryEvents({ limit: 10 }).map((e) => e.message)).toEqual(['new']);
  });

  it('brings the used size under the bound by deleting the oldest rows first', async () => {
    storeLines(20_000, NOW, 1, 'y'.repeat(200));
    const retention = new Retention({ store, logger, maxAgeMs: 7 * DAY, maxBytes: 2 * 1024 * 1024, now: () => NOW });
    const before = retention.usedBytes();
    expect(before).toBeGreaterThan(4 * 1024 * 1024);

    const pass = await retention.runOnce();

    expect(pass.usedBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(pass.deletedBySize).toBeGreaterThan(0);
    const kept = store.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 1 })[0]!;
    // What is left is the newest window: the last batch survived, the first did not.
    expect(Number(kept.line.split(' ')[0])).toBeGreaterThan(1);
    expect(store.queryLogs({ device: 'dev-1', tail: 1, limit: 1 })[0]!.line).toMatch(/^20000 /);
  });

  it('keeps ingest committing while a long pass runs', async () => {
    storeLines(150_000, NOW - 30 * DAY, 1);
    // highWaterMessages 0: each publish waits for its commit, so the loop below counts commits.
    const ingest = new TelemetryIngest({ store, logger, now: () => NOW, highWaterMessages: 0, commitIntervalMs: [0, 0] });
    const retention = new Retention({ store, logger, maxAgeMs: 7 * DAY, maxBytes: 1024 ** 3, chunkRows: 2000, now: () => NOW });

    let passDone = false;
    let committedDuringPass = 0;
    const pass = retention.runOnce().then((result) => {
      passDone = true;
      return result;
    });
    // A device publishing one batch per turn of the event loop while the pass runs.
    let seq = 1_000_000;
    while (!passDone) {
      await new Promise<void>((resolve) =>
        ingest.accept('dev-1', 'logs', Buffer.from(JSON.stringify({ seq: seq++, lines: [logLine('live')] })), () => resolve()),
      );
      if (!passDone) committedDuringPass++;
    }
    const result = await pass;
    ingest.close();

    expect(result.deletedByAge).toBe(150_000);
    expect(committedDuringPass).toBeGreaterThan(10);
    expect(countLogs()).toBe(seq - 1_000_000);
  });
});
