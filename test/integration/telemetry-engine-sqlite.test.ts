/** The stored-telemetry suite (test/support/telemetry-suite.ts) on the telemetry file: a fresh telemetry.db per test, a connection per handle. */
import { join } from 'node:path';
import { pino } from 'pino';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { TELEMETRY_MIGRATIONS } from '../../broker/telemetry/migrations.js';
import { SqliteTelemetryReads } from '../../broker/telemetry/reads.js';
import { Retention } from '../../broker/telemetry/retention.js';
import { TelemetryStore } from '../../broker/telemetry/store.js';
import { InlineWriter } from '../../broker/telemetry/writer.js';
import { scratchDir } from '../support/scratch.js';
import { telemetrySuite } from '../support/telemetry-suite.js';

const logger = pino({ level: 'silent' });

telemetrySuite('SQLite', {
  async create(cleanup) {
    const file = join(scratchDir('flotilla-telemetry-suite-'), 'telemetry.db');
    return async () => {
      const db = openDatabase(file, TELEMETRY_MIGRATIONS);
      cleanup.add('telemetry.db connection', () => db.close());
      return {
        writer: new InlineWriter(db),
        reads: new SqliteTelemetryReads(new TelemetryStore(db)),
        async trimByAge(maxAgeMs, nowMs) {
          const pass = await new Retention({
            store: { db },
            logger,
            maxAgeMs,
            maxBytes: 1024 ** 4,
            chunkRows: 1,
            now: () => nowMs,
          }).runOnce();
          return pass.deletedByAge;
        },
      };
    };
  },
});
