/**
 * The telemetry of hub replicas (broker/hub/telemetry.ts' openTelemetry given the stores' pool):
 * each replica's own pool on one private PostgreSQL database, the ingest committing what a
 * replica's devices send. What one replica stored is what every replica answers; a replica that
 * starts later seeds its newest samples and sparklines from the database; a device's outbox
 * resending to another replica after its own went away stores each message once; and a replica
 * opens no telemetry file, while a single hub still does.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveHubConfig } from '../../broker/config.js';
import { type HubTelemetry, openTelemetry } from '../../broker/hub/telemetry.js';
import { openPostgres } from '../../broker/store/pg/connect.js';
import { Closer } from '../../shared/closer.js';
import type { LogBatch, Metrics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { logLine, metricsSample } from '../support/fixtures.js';
import { LogCapture } from '../support/logs.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { scratchDir } from '../support/scratch.js';
import { duplicates } from '../support/stored-telemetry.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.close());

describe('telemetry of hub replicas on PostgreSQL', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let url: string;

  /** One replica's telemetry: its own data dir and pool, as a replica process has. */
  async function replica(logs = new LogCapture()): Promise<HubTelemetry & { dataDir: string; closer: Closer }> {
    const dataDir = scratchDir('flotilla-telemetry-replica-');
    const closer = new Closer();
    cleanup.add('replica', () => closer.close());
    const db = await openPostgres(url, { logger: logs.logger });
    closer.add('pool', () => db.close());
    const telemetry = await openTelemetry(resolveHubConfig({ dataDir }), logs.logger, closer, 1, db);
    return { ...telemetry, dataDir, closer };
  }

  /** What a device's durable publish waits for: its commit (or the refusal that has it sent again). */
  function send(t: HubTelemetry, device: string, channel: 'logs' | 'metrics', message: LogBatch | Metrics): Promise<void> {
    return new Promise((resolve, reject) =>
      t.ingest.accept(device, channel, JSON.stringify(message), (err) => (err ? reject(err) : resolve()), { durable: true }),
    );
  }

  const batch = (seq: number): LogBatch => ({ seq, lines: [logLine(`line ${seq}`)] });
  const lines = async (t: HubTelemetry, device: string) =>
    (await t.store.queryLogs({ device, sinceMs: 0, limit: 1000 })).map((r) => r.line);

  it('answers on every replica what one stored, and a replica started later seeds its newest samples and sparklines', async () => {
    url = await server.createDatabase();
    const [a, b] = [await replica(), await replica()];
    for (let seq = 1; seq <= 3; seq++) await send(a, 'dev-1', 'logs', batch(seq));
    for (let seq = 1; seq <= 2; seq++) {
      const sample = metricsSample(seq);
      sample.host.cpuPercent = 10 * seq;
      await send(a, 'dev-1', 'metrics', sample);
    }

    expect(await lines(b, 'dev-1')).toEqual(['line 1', 'line 2', 'line 3']);
    expect((await b.store.queryMetrics({ device: 'dev-1', tail: 5, limit: 100 })).map((s) => s.seq)).toEqual([1, 2]);
    // The replica that stored them heard of them itself.
    expect(a.history.get('dev-1')?.cpu).toEqual([10, 20]);

    const c = await replica();
    expect(c.ingest.latest.get('dev-1')?.seq).toBe(2);
    expect(c.history.get('dev-1')?.cpu).toEqual([10, 20]);
  });

  it("stores each message once when a device's outbox resends to another replica what its own had acknowledged", async () => {
    url = await server.createDatabase();
    const [a, b] = [await replica(), await replica()];
    // Acknowledged by replica a: 1–20. Then a goes; the device, not having every PUBACK, resends 15–20 and sends 21–30 to b.
    for (let seq = 1; seq <= 20; seq++) await send(a, 'dev-1', 'logs', batch(seq));
    await a.closer.close();
    await Promise.all(Array.from({ length: 16 }, (_, i) => send(b, 'dev-1', 'logs', batch(15 + i))));

    const stored = await lines(b, 'dev-1');
    expect(duplicates(stored)).toEqual([]);
    expect(stored).toEqual(Array.from({ length: 30 }, (_, i) => `line ${i + 1}`));
    expect(b.ingest.counters).toMatchObject({ duplicates: 6, stored: { logs: 10 } });
  });

  it('opens no telemetry file on a replica, while a single hub keeps its own', async () => {
    url = await server.createDatabase();
    const logs = new LogCapture('info');
    const shared = await replica(logs);
    expect(existsSync(join(shared.dataDir, 'telemetry.db'))).toBe(false);
    expect(logs.matching("telemetry is kept in PostgreSQL by age and by its rows' size")).toHaveLength(1);

    const dataDir = scratchDir('flotilla-telemetry-single-');
    const closer = new Closer();
    cleanup.add('single hub', () => closer.close());
    const single = await openTelemetry(resolveHubConfig({ dataDir }), new LogCapture().logger, closer, 0, undefined);
    await send(single, 'dev-1', 'logs', batch(1));
    expect(existsSync(join(dataDir, 'telemetry.db'))).toBe(true);
    expect(await lines(single, 'dev-1')).toEqual(['line 1']);
    expect(await lines(shared, 'dev-1')).toEqual([]);
  });
});
