/**
 * What the size bound of telemetry retention on PostgreSQL costs (broker/telemetry/pg/retention.ts):
 * N log batches of about 1 KiB each from 100 devices in a fresh database, then one pass deleting the
 * oldest three quarters, by age (the baseline, as before the size bound) or by size (a quarter of the
 * measured size kept), alternated in one run on one private server. Prints, per pass, the time to
 * measure the size, the pass's time and rows per second, and the rows' size next to the table's on disk.
 *
 *   N=400000 npx tsx bench/telemetry-retention-pg.ts
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { openPostgres } from '../broker/store/pg/connect.js';
import { openPgTelemetry } from '../broker/telemetry/pg/open.js';
import { PgRetention } from '../broker/telemetry/pg/retention.js';
import type { TelemetryRow } from '../broker/telemetry/rows.js';
import { logRow } from '../broker/telemetry/store.js';
import { logLine } from '../test/support/fixtures.js';
import { LogCapture } from '../test/support/logs.js';
import { startPostgres } from '../test/support/postgres.js';
import { write } from '../test/support/telemetry-suite.js';
import { positiveInt } from './int-arg.js';

const N = positiveInt('N', process.env.N ?? '200000', 1000);
const ROUNDS = positiveInt('ROUNDS', process.env.ROUNDS ?? '2');
const MiB = 1024 * 1024;
const mib = (bytes: number) => +(bytes / MiB).toFixed(1);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

const server = await startPostgres();
const logger = new LogCapture().logger;
console.log(`load ${load()}; N=${N}`);
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ['age', 'size'] as const) {
      const db = await openPostgres(await server.createDatabase(), { logger });
      const { writer } = await openPgTelemetry(db, { logger, maxAgeMs: Number.MAX_SAFE_INTEGER });
      // Batch n arrived at n ms: the age cutoff is a row count.
      for (let first = 1; first <= N; first += 1000) {
        const rows: TelemetryRow[] = [];
        for (let seq = first; seq < Math.min(N + 1, first + 1000); seq++) {
          const batch = { seq, lines: [logLine(`${seq} ${randomBytes(400).toString('hex')}`)] };
          rows.push(logRow(`dev-${seq % 100}`, batch, seq, JSON.stringify(batch)));
        }
        await write(writer, rows);
      }
      const probe = new PgRetention({ db, logger, maxAgeMs: Number.MAX_SAFE_INTEGER });
      const m0 = performance.now();
      const used = await probe.usedBytes();
      const measureMs = performance.now() - m0;
      const [disk] = await db.query<{ bytes: number }>("SELECT pg_total_relation_size('log_batches') AS bytes");
      const retention =
        kind === 'age'
          ? new PgRetention({ db, logger, maxAgeMs: N / 4, now: () => N + 1 })
          : new PgRetention({ db, logger, maxAgeMs: Number.MAX_SAFE_INTEGER, maxBytes: Math.round(used / 4) });
      const p0 = performance.now();
      const pass = await retention.runOnce();
      const passS = (performance.now() - p0) / 1000;
      const deleted = pass.deletedByAge + pass.deletedBySize;
      console.log(
        JSON.stringify({
          kind,
          usedMiB: mib(used),
          diskMiB: mib(disk!.bytes),
          measureMs: +measureMs.toFixed(1),
          deleted,
          passS: +passS.toFixed(2),
          rowsPerS: Math.round(deleted / passS),
          usedAfterMiB: mib(await probe.usedBytes()),
          load: load(),
        }),
      );
      await db.close();
    }
  }
} finally {
  await server.close();
}
