/**
 * Logs, metrics and events of a hub replica (`--database postgres://…`): in
 * the replicas' shared database, so every replica answers a query with what
 * any of them stored, and a message redelivered to another replica after a
 * crash is stored once (the (device, seq) key). No telemetry file is opened.
 *
 * Each replica stores what its own devices send, and tells its own followers
 * (`logs -f`, events -f, the fleet's sparklines) of what it committed; the
 * other replicas' followers hear of it through telemetry-follow.ts.
 *
 * Loaded only for a replica: a single hub does not carry this path.
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { HubConfig } from '../config.js';
import { loadMetricsHistory } from '../fleet/history.js';
import type { PgDatabase } from '../store/pg/database.js';
import { TelemetryIngest } from '../telemetry/ingest.js';
import { openPgTelemetry } from '../telemetry/pg/open.js';
import type { HubTelemetry } from './telemetry.js';

export async function startSharedTelemetry(
  db: PgDatabase,
  config: HubConfig,
  logger: Logger,
  closer: Closer,
  knownDevices: number,
): Promise<HubTelemetry> {
  const { writer, reads, retention } = await openPgTelemetry(db, {
    logger,
    maxAgeMs: config.telemetryMaxAgeMs,
    maxBytes: config.telemetryMaxBytes,
    intervalMs: config.retentionIntervalMs,
  });
  logger.info(
    { component: 'retention', maxAgeMs: config.telemetryMaxAgeMs, maxBytes: config.telemetryMaxBytes },
    "telemetry is kept in PostgreSQL by age and by its rows' size",
  );
  const ingest = new TelemetryIngest({ writer, logger });
  // Closed after the broker (closers run in reverse): what devices sent last is committed before the pool goes.
  closer.add('telemetry ingest', () => ingest.close());
  ingest.seedLatest(await reads.latestMetrics());
  const history = await loadMetricsHistory(reads, ingest, knownDevices);
  retention.start();
  closer.add('telemetry retention', () => retention.stop());
  return { store: reads, ingest, history };
}
