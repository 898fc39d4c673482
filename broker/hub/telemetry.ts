/**
 * Logs, metrics and events: their own SQLite file (a replica's are in the
 * shared database instead: telemetry-postgres.ts), the ingest that fills it,
 * the retention that trims it, the fleet's sparklines it feeds. The file's
 * writes (ingest's commits and retention's deletes) run on a thread of their
 * own (broker/telemetry/writer.ts); this thread's connection only reads.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { HubConfig } from '../config.js';
import { type MetricsHistory, startMetricsHistory } from '../fleet/history.js';
import type { PgDatabase } from '../store/pg/database.js';
import { openDatabase } from '../store/sqlite/db.js';
import { TelemetryIngest } from '../telemetry/ingest.js';
import { TELEMETRY_MIGRATIONS } from '../telemetry/migrations.js';
import { SqliteTelemetryReads, type TelemetryReads } from '../telemetry/reads.js';
import { TelemetryStore } from '../telemetry/store.js';
import { ThreadWriter } from '../telemetry/writer.js';

export interface HubTelemetry {
  /** Stored telemetry, for the API's queries. */
  store: TelemetryReads;
  ingest: TelemetryIngest;
  /** The fleet's sparklines (broker/fleet/). */
  history: MetricsHistory;
}

/** `knownDevices` bounds how many stored samples seed the sparklines. */
export function startTelemetry(config: HubConfig, logger: Logger, closer: Closer, knownDevices = 0): HubTelemetry {
  const file = join(config.dataDir, 'telemetry.db');
  // Opened here first: it brings the schema up to date before the writer thread opens the file.
  const store = new TelemetryStore(openDatabase(file, TELEMETRY_MIGRATIONS));
  closer.add('telemetry.db', () => store.db.close());
  const writer = new ThreadWriter({
    file,
    logger,
    retention: { maxAgeMs: config.telemetryMaxAgeMs, maxBytes: config.telemetryMaxBytes, intervalMs: config.retentionIntervalMs },
  });
  const ingest = new TelemetryIngest({ store, logger, writer });
  // Closed after the broker (closers run in reverse): what devices sent last is stored, then the writer thread ends.
  closer.add('telemetry ingest', () => ingest.close());
  return { store: new SqliteTelemetryReads(store), ingest, history: startMetricsHistory(store, ingest, knownDevices) };
}

/**
 * The hub's telemetry on its engine: the shared PostgreSQL database of a
 * replica (`postgres`, the stores' pool), else the telemetry file.
 */
export async function openTelemetry(
  config: HubConfig,
  logger: Logger,
  closer: Closer,
  knownDevices: number,
  postgres: PgDatabase | undefined,
): Promise<HubTelemetry> {
  if (!postgres) return startTelemetry(config, logger, closer, knownDevices);
  // Loaded only here: a single hub does not carry the PostgreSQL path.
  const { startSharedTelemetry } = await import('./telemetry-postgres.js');
  return startSharedTelemetry(postgres, config, logger, closer, knownDevices);
}
