/** Logs, metrics and events: their own SQLite file, the ingest that fills it, the retention that trims it, the fleet's sparklines it feeds. */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { HubConfig } from '../config.js';
import { type MetricsHistory, startMetricsHistory } from '../fleet/history.js';
import { openDatabase } from '../store/db.js';
import { TelemetryIngest } from '../telemetry/ingest.js';
import { TELEMETRY_MIGRATIONS } from '../telemetry/migrations.js';
import { Retention } from '../telemetry/retention.js';
import { TelemetryStore } from '../telemetry/store.js';

export interface HubTelemetry {
  store: TelemetryStore;
  ingest: TelemetryIngest;
  /** The fleet's sparklines (broker/fleet/). */
  history: MetricsHistory;
}

/** `knownDevices` bounds how many stored samples seed the sparklines. */
export function startTelemetry(config: HubConfig, logger: Logger, closer: Closer, knownDevices = 0): HubTelemetry {
  const store = new TelemetryStore(openDatabase(join(config.dataDir, 'telemetry.db'), TELEMETRY_MIGRATIONS));
  closer.add('telemetry.db', () => store.db.close());
  const ingest = new TelemetryIngest({ store, logger });
  // Closed after the broker (closers run in reverse): what devices sent last is stored.
  closer.add('telemetry ingest', () => ingest.close());
  const retention = new Retention({
    store,
    logger,
    maxAgeMs: config.telemetryMaxAgeMs,
    maxBytes: config.telemetryMaxBytes,
    intervalMs: config.retentionIntervalMs,
  });
  retention.start();
  closer.add('telemetry retention', () => retention.stop());
  return { store, ingest, history: startMetricsHistory(store, ingest, knownDevices) };
}
