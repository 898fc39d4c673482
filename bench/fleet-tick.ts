/**
 * What a tick of the fleet stream costs the hub (broker/fleet/feed.ts): a
 * real hub.db with N devices (each with a reported state of 3 apps, a sealed
 * desired document of 3 apps, labels), the newest metrics sample and a full
 * 30-sample sparkline each. Reports, median of `--runs`:
 *
 *   cold     the first follower's read: every row parsed, every desired document opened
 *   quiet    a tick where nothing changed (what an idle fleet costs each second)
 *   busy     a tick where 10 % of the devices sent a sample and 2 % a state report
 *            (metrics every 10 s, the agent's default)
 *
 * and the size of the first event (the whole fleet) in bytes; then `seed`, what
 * a hub's start spends filling the sparklines from a telemetry.db holding 60
 * samples of each device (the one bounded query and the rings).
 *
 *   npx tsx bench/fleet-tick.ts [--devices 1000,5000] [--runs 20]
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { FleetFeed } from '../broker/fleet/feed.js';
import { MetricsHistory, startMetricsHistory } from '../broker/fleet/history.js';
import { SecretCipher } from '../broker/store/secret-cipher.js';
import { openDatabase } from '../broker/store/sqlite/db.js';
import { SqliteDeviceStore } from '../broker/store/sqlite/devices.js';
import { TelemetryIngest } from '../broker/telemetry/ingest.js';
import { TELEMETRY_MIGRATIONS } from '../broker/telemetry/migrations.js';
import { TelemetryStore } from '../broker/telemetry/store.js';
import { FLEET_HISTORY_SAMPLES, type MetricsSample } from '../shared/index.js';
import { deviceState, metricsSample } from '../test/support/fixtures.js';

const { values: args } = parseArgs({
  options: { devices: { type: 'string', default: '1000,5000' }, runs: { type: 'string', default: '20' } },
  strict: true,
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const APPS = ['thermo', 'gateway', 'logger'];

function fleet(dir: string, count: number) {
  const db = openDatabase(join(dir, 'hub.db'));
  const devices = new SqliteDeviceStore(db, new SecretCipher(randomBytes(32)));
  const latest = new Map<string, MetricsSample>();
  const history = new MetricsHistory();
  const ids = Array.from({ length: count }, (_, i) => `dev-${String(i).padStart(5, '0')}`);
  let seq = 0;
  const report = (id: string) =>
    devices.recordState(
      deviceState(id, {
        observedRevision: 1,
        labels: { site: `site-${Number(id.slice(4)) % 20}`, arch: 'arm64' },
        apps: APPS.map((name) => ({ name, revision: 1, phase: 'running', containers: [] })),
      }),
    );
  const sample = (id: string) => {
    const s = { device: id, ...metricsSample(++seq) };
    s.host.cpuPercent = seq % 100;
    latest.set(id, s);
    history.record(id, s.host);
  };
  db.transaction(() => {
    for (const id of ids) {
      devices.ensure(id);
      report(id);
      devices.recordDesired(
        {
          deviceId: id,
          revision: 1,
          issuedAt: new Date().toISOString(),
          apps: APPS.map((name) => ({ name, revision: 1, containers: [{ name: 'main', image: `registry.local/${name}:1.0` }] })),
        },
        'hash',
      );
      for (let i = 0; i < FLEET_HISTORY_SAMPLES; i++) sample(id);
    }
  })();
  return { db, devices, latest, history, ids, report, sample };
}

for (const count of args.devices.split(',').filter(Boolean).map(Number)) {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-fleet-'));
  try {
    const f = fleet(dir, count);
    const runs = Number(args.runs);
    const cold: number[] = [];
    const quiet: number[] = [];
    const busy: number[] = [];
    let firstBytes = 0;
    for (let run = 0; run < runs; run++) {
      const feed = new FleetFeed({
        devices: f.devices,
        latest: f.latest,
        history: f.history,
        logger: pino({ level: 'silent' }),
        tickMs: 3_600_000,
      });
      let start = process.hrtime.bigint();
      const { snapshot, stop } = await feed.follow(() => undefined);
      cold.push(ms(start));
      firstBytes = Buffer.byteLength(JSON.stringify({ items: snapshot }));
      start = process.hrtime.bigint();
      await feed.refresh();
      quiet.push(ms(start));
      for (let i = 0; i < count; i += 10) f.sample(f.ids[(i + run) % count]!);
      for (let i = 0; i < count; i += 50) f.report(f.ids[(i + run) % count]!);
      start = process.hrtime.bigint();
      const changes = await feed.refresh();
      busy.push(ms(start));
      if (changes.items.length < count / 10) throw new Error(`expected ≥ ${count / 10} changed rows, got ${changes.items.length}`);
      stop();
      feed.close();
    }
    console.log(
      `devices ${count}: cold ${median(cold).toFixed(1)} ms, quiet tick ${median(quiet).toFixed(2)} ms, busy tick ${median(busy).toFixed(2)} ms, first event ${(firstBytes / 1024).toFixed(0)} KiB`,
    );
    f.db.close();

    const store = new TelemetryStore(openDatabase(join(dir, 'telemetry.db'), TELEMETRY_MIGRATIONS));
    store.db.transaction(() => {
      for (let seq = 1; seq <= 60; seq++) for (const id of f.ids) store.insertMetrics(id, metricsSample(seq), Date.now());
    })();
    const ingest = new TelemetryIngest({ store, logger: pino({ level: 'silent' }) });
    const seed: number[] = [];
    for (let run = 0; run < Math.min(runs, 5); run++) {
      const start = process.hrtime.bigint();
      const history = startMetricsHistory(store, ingest, count);
      seed.push(ms(start));
      if (history.get(f.ids[0]!)?.cpu.length !== FLEET_HISTORY_SAMPLES) throw new Error('the seed missed samples');
    }
    ingest.close();
    store.db.close();
    console.log(`devices ${count}: seed from ${count * 60} stored samples ${median(seed).toFixed(0)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
