/**
 * Where the hub's ingest time goes, one stage at a time, in this process (no
 * broker, no sockets): the same payloads bench/telemetry-ingest.ts sends,
 * through the hub's own code (`decode`, `TelemetryIngest`, `TelemetryStore`
 * on a real telemetry.db in a temp dir).
 *
 *   npx tsx bench/telemetry/ingest-costs.ts [--messages 20000]
 *
 * Stages, per message (µs, median of 5 passes):
 *   - JSON.parse of the payload;
 *   - decode(): JSON.parse + ajv as the hub runs it (allErrors, verbose, date-time format);
 *   - the same validation without the date-time format check (a copy of the
 *     schemas compiled on an Ajv without ajv-formats), to price the format;
 *   - accept() + flush() of TelemetryIngest, i.e. decode + insert + commit, for
 *     group commits of 1, 10, 100 and 1000 messages.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ajv } from 'ajv';
import { pino } from 'pino';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { TelemetryIngest } from '../../broker/telemetry/ingest.js';
import { TELEMETRY_MIGRATIONS } from '../../broker/telemetry/migrations.js';
import { TelemetryStore } from '../../broker/telemetry/store.js';
import { decode, LogBatch, Metrics } from '../../shared/index.js';
import { logBatch, METRICS_EVERY, metricsSample } from './payloads.js';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '20000' } } });
const MESSAGES = Number(values.messages);
const PASSES = 5;

type Message = { channel: 'logs' | 'metrics'; device: string; payload: Buffer };

function messages(count: number, firstSeq: number): Message[] {
  const ts = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => {
    const device = `bench-${String(i % 100).padStart(2, '0')}`;
    const seq = firstSeq + Math.floor(i / 100);
    return seq % METRICS_EVERY === METRICS_EVERY - 1
      ? { channel: 'metrics' as const, device, payload: Buffer.from(JSON.stringify(metricsSample(seq, ts))) }
      : { channel: 'logs' as const, device, payload: Buffer.from(JSON.stringify(logBatch(device, seq, ts))) };
  });
}

/** µs per message, median over PASSES. */
function time(run: (batch: Message[]) => void, fresh: (pass: number) => Message[]): number {
  const results: number[] = [];
  for (let pass = 0; pass < PASSES; pass++) {
    const batch = fresh(pass);
    const started = performance.now();
    run(batch);
    results.push(((performance.now() - started) * 1000) / batch.length);
  }
  return results.sort((a, b) => a - b)[Math.floor(PASSES / 2)]!;
}

const plainAjv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true, validateFormats: false });
const noFormat = { logs: plainAjv.compile(LogBatch), metrics: plainAjv.compile(Metrics) };
const schemas = { logs: LogBatch, metrics: Metrics };

const sample = messages(MESSAGES, 0);
const bytes = sample.reduce((sum, m) => sum + m.payload.length, 0) / sample.length;
const rows: [string, number][] = [];
rows.push([
  'JSON.parse',
  time(
    (b) => {
      for (const m of b) JSON.parse(m.payload.toString('utf8'));
    },
    () => sample,
  ),
]);
rows.push([
  'decode (parse + ajv, date-time checked)',
  time(
    (b) => {
      for (const m of b) decode(schemas[m.channel], m.payload);
    },
    () => sample,
  ),
]);
rows.push([
  'parse + ajv without date-time format',
  time(
    (b) => {
      for (const m of b) noFormat[m.channel](JSON.parse(m.payload.toString('utf8')));
    },
    () => sample,
  ),
]);

const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-costs-'));
try {
  const store = new TelemetryStore(openDatabase(join(dir, 'telemetry.db'), TELEMETRY_MIGRATIONS));
  const ingest = new TelemetryIngest({ store, logger: pino({ level: 'silent' }) });
  let seq = 1_000_000;
  for (const groupCommit of [1, 10, 100, 1000]) {
    const perMessage = time(
      (b) => {
        for (let i = 0; i < b.length; i += groupCommit) {
          for (const m of b.slice(i, i + groupCommit)) ingest.accept(m.device, m.channel, m.payload, () => {});
          ingest.flush();
        }
      },
      () => {
        seq += MESSAGES;
        return messages(MESSAGES, seq);
      },
    );
    rows.push([`accept + flush, ${groupCommit} message(s) per commit`, perMessage]);
  }
  ingest.close();
  store.db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(
  `ingest-costs: node ${process.version}, ${MESSAGES} messages per pass (90% log batches, avg ${bytes.toFixed(0)} bytes), median of ${PASSES}`,
);
for (const [name, us] of rows)
  console.log(`${name.padEnd(44)} ${us.toFixed(1).padStart(7)} µs/msg  (${Math.round(1e6 / us)} msg/s on one core)`);
