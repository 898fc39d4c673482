/**
 * A durable telemetry message the shared database cannot take is not acknowledged: through a real
 * Aedes broker with the hub's ingest-before-ack hook, an MQTT.js device publishing QoS 1 logs while
 * PostgreSQL is down (past the writer's retry window) gets no PUBACK and has its connection
 * closed, so its outbox keeps the message; sent again once PostgreSQL is back, it is acknowledged
 * and stored once.
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../broker/store/pg/connect.js';
import { TelemetryIngest } from '../../broker/telemetry/ingest.js';
import { ingestBeforeAck } from '../../broker/telemetry/ingest-before-ack.js';
import { openPgTelemetry } from '../../broker/telemetry/pg/open.js';
import { PgTelemetryWriter } from '../../broker/telemetry/pg/writer.js';
import { Topics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { logLine } from '../support/fixtures.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.close());

describe('a durable telemetry message the database cannot take', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('is not acknowledged: the connection closes, and the message sent again is stored once', { timeout: 30_000 }, async () => {
    const logs = new LogCapture();
    const db = await openPostgres(await server.createDatabase(), { logger: logs.logger, connectTimeoutMs: 1_000 });
    cleanup.add('pool', () => db.close());
    const { reads } = await openPgTelemetry(db, { logger: logs.logger, maxAgeMs: 1e12 });
    const ingest = new TelemetryIngest({ writer: new PgTelemetryWriter(db, { retryWindowMs: 300 }), logger: logs.logger });
    cleanup.add('ingest', () => ingest.close());
    const topics = new Topics();
    const aedes = await Aedes.createBroker({ authorizePublish: ingestBeforeAck((_client, _packet, done) => done(null), topics, ingest) });
    const listener = createServer(aedes.handle);
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    cleanup.add('broker', () => new Promise<void>((resolve) => aedes.close(() => listener.close(() => resolve()))));
    const url = `mqtt://127.0.0.1:${(listener.address() as { port: number }).port}`;
    const batch = JSON.stringify({ seq: 1, lines: [logLine('kept by the device until stored')] });

    await server.stop();
    cleanup.add('the server up for the next test', () => (server.running ? undefined : server.start()));
    const device = await connectClient(url, { clientId: 'dev-1' });
    cleanup.add('device', () => closeClient(device));
    const closed = new Promise<string>((resolve) => device.once('close', () => resolve('closed')));
    const acknowledged = new Promise<string>((resolve) =>
      device.publish(topics.device('dev-1', 'logs'), batch, { qos: 1 }, (err) => {
        if (!err) resolve('acknowledged');
      }),
    );
    expect(await Promise.race([closed, acknowledged])).toBe('closed');
    expect(ingest.counters.stored.logs).toBe(0);

    await server.start();
    const again = await connectClient(url, { clientId: 'dev-1' });
    cleanup.add('device again', () => closeClient(again));
    await again.publishAsync(topics.device('dev-1', 'logs'), batch, { qos: 1 });
    await again.publishAsync(topics.device('dev-1', 'logs'), batch, { qos: 1 });

    expect((await reads.queryLogs({ device: 'dev-1', sinceMs: 0, limit: 10 })).map((r) => r.line)).toEqual([
      'kept by the device until stored',
    ]);
    expect(ingest.counters).toMatchObject({ stored: { logs: 1 }, duplicates: 1 });
  });
});
