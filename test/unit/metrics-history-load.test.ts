/**
 * Seeding from asynchronous reads (the replicas' shared database): the fleet's
 * sparklines and the ingest's newest samples take what was stored, and what
 * the ingest commits while the read is under way is neither lost nor put
 * before older stored points.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMetricsHistory } from '../../broker/fleet/history.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { TelemetryIngest } from '../../broker/telemetry/ingest.js';
import { TELEMETRY_MIGRATIONS } from '../../broker/telemetry/migrations.js';
import type { RecentHostMetrics, TelemetryReads } from '../../broker/telemetry/reads.js';
import { TelemetryStore } from '../../broker/telemetry/store.js';
import { InlineWriter } from '../../broker/telemetry/writer.js';
import type { MetricsSample } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { metricsSample } from '../support/fixtures.js';

const logger = pino({ level: 'silent' });
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** An ingest committing on this thread into an in-memory file, with no store of its own to seed from. */
function ingestWithoutStore(): TelemetryIngest {
  const db = openDatabase(':memory:', TELEMETRY_MIGRATIONS);
  cleanup.add('telemetry db', () => db.close());
  const ingest = new TelemetryIngest({ writer: new InlineWriter(db), logger, commitIntervalMs: [0, 0] });
  cleanup.add('ingest', () => ingest.close());
  return ingest;
}

function withCpu(seq: number, cpuPercent: number): MetricsSample {
  const sample = metricsSample(seq);
  sample.host.cpuPercent = cpuPercent;
  return { device: 'd', ...sample };
}

/** Reads whose seed the test answers when it chooses. */
function pendingReads(): { reads: TelemetryReads; answer: (rows: RecentHostMetrics[]) => void } {
  let answer!: (rows: RecentHostMetrics[]) => void;
  const seed = new Promise<RecentHostMetrics[]>((resolve) => (answer = resolve));
  const unused = () => Promise.reject(new Error('not read by the history'));
  return {
    reads: { queryLogs: unused, queryEvents: unused, queryMetrics: unused, latestMetrics: unused, recentHostMetrics: () => seed },
    answer,
  };
}

async function commit(ingest: TelemetryIngest, sample: MetricsSample): Promise<void> {
  const { device, ...message } = sample;
  await new Promise<void>((resolve) => ingest.accept(device, 'metrics', JSON.stringify(message), () => resolve(), { durable: true }));
}

describe('loadMetricsHistory', () => {
  it('puts stored points first and a sample committed during the read after them', async () => {
    const ingest = ingestWithoutStore();
    const { reads, answer } = pendingReads();
    const loading = loadMetricsHistory(reads, ingest, 1);

    await commit(ingest, withCpu(3, 30));
    answer([withCpu(1, 10), withCpu(2, 20)].map(({ device, host }) => ({ device, host })));
    const history = await loading;
    await commit(ingest, withCpu(4, 40));

    expect(history.get('d')?.cpu).toEqual([10, 20, 30, 40]);
  });

  it('fails with the read that failed, so the start that awaits it says why', async () => {
    const ingest = ingestWithoutStore();
    let fail!: (err: Error) => void;
    const seed = new Promise<RecentHostMetrics[]>((_, reject) => (fail = reject));
    const { reads } = pendingReads();
    const loading = loadMetricsHistory({ ...reads, recentHostMetrics: () => seed }, ingest, 1);

    fail(new Error('database unavailable'));
    await expect(loading).rejects.toThrow('database unavailable');
  });
});

describe('TelemetryIngest.seedLatest', () => {
  it("takes a stored sample as its device's newest unless a newer one was committed meanwhile", async () => {
    const ingest = ingestWithoutStore();
    await commit(ingest, withCpu(5, 50));

    ingest.seedLatest([withCpu(4, 40), { ...withCpu(2, 20), device: 'e' }]);

    expect(ingest.latest.get('d')?.seq).toBe(5);
    expect(ingest.latest.get('e')?.seq).toBe(2);
  });

  it('seeds from the telemetry file at once when given one', () => {
    const db = openDatabase(':memory:', TELEMETRY_MIGRATIONS);
    cleanup.add('telemetry db', () => db.close());
    const store = new TelemetryStore(db);
    const { device, ...message } = withCpu(7, 70);
    store.insertMetrics(device, message, Date.now());
    const ingest = new TelemetryIngest({ store, logger });
    cleanup.add('ingest', () => ingest.close());
    expect(ingest.latest.get('d')?.seq).toBe(7);
  });
});
