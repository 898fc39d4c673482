/**
 * One `apps.applyAll` of N specs against N separate `apps.apply` calls, over the HTTP API of an
 * in-process hub on a SQLite file (no devices: the API, the checks and the store), in the same run.
 *
 *   npx tsx bench/apply-set.ts [--apps 200] [--runs 5] [--json]
 *
 * Each run applies every app of both variants at a new image, so every spec is a new revision
 * (`configured`) in both; the variants name different apps (set-*, one-*) and alternate which goes
 * first. Reported: the median and range of each, and the ratio of medians (separate / set).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startHub } from '../broker/hub.js';
import { appSpec } from '../test/support/fixtures.js';
import { http } from '../test/support/http.js';
import { positiveInt } from './int-arg.js';

const { values } = parseArgs({
  options: {
    apps: { type: 'string', default: '200' },
    runs: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const apps = positiveInt('apps', values.apps);
const runs = positiveInt('runs', values.runs);

const specs = (prefix: string, run: number) =>
  Array.from({ length: apps }, (_, i) => appSpec(`${prefix}-${i}`, { site: 'roof' }, `registry.local/bench:${run}.0`));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-'));
  const hub = await startHub({ dataDir: join(dir, 'hub'), host: '127.0.0.1', mqttPort: 0, wsPort: 0, httpPort: 0, logLevel: 'silent' });
  const httpUrl = `http://127.0.0.1:${hub.ports.http}`;
  const set: number[] = [];
  const separate: number[] = [];
  try {
    const post = async (path: string, body: unknown) => {
      const res = await http(httpUrl, 'POST', path, body);
      if (res.status !== 200) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    };
    const timeSet = async (run: number) => {
      const started = performance.now();
      await post('/api/v1/apply', { specs: specs('set', run) });
      set.push(performance.now() - started);
    };
    const timeSeparate = async (run: number) => {
      const started = performance.now();
      for (const spec of specs('one', run)) await post('/api/v1/apps', spec);
      separate.push(performance.now() - started);
    };
    // Run 0 creates the apps and warms the hub's validators; it is not counted.
    await post('/api/v1/apply', { specs: specs('set', 0) });
    for (const spec of specs('one', 0)) await post('/api/v1/apps', spec);
    for (let run = 1; run <= runs; run++) {
      if (run % 2 === 0) {
        await timeSet(run);
        await timeSeparate(run);
      } else {
        await timeSeparate(run);
        await timeSet(run);
      }
    }
  } finally {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const result = {
    apps,
    runs,
    setMs: { median: median(set), min: Math.min(...set), max: Math.max(...set) },
    separateMs: { median: median(separate), min: Math.min(...separate), max: Math.max(...separate) },
    ratio: median(separate) / median(set),
  };
  if (values.json) return void console.log(JSON.stringify(result));
  const ms = (x: { median: number; min: number; max: number }) => `${x.median.toFixed(0)} ms (${x.min.toFixed(0)}-${x.max.toFixed(0)})`;
  console.log(`${apps} apps, ${runs} runs, SQLite, HTTP on loopback`);
  console.log(`  one apps.applyAll:        ${ms(result.setMs)}`);
  console.log(`  ${apps} separate apps.apply: ${ms(result.separateMs)}`);
  console.log(`  separate / set: ${result.ratio.toFixed(1)}x`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
