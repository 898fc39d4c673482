/**
 * Fleet apply benchmark: how long from `POST /api/v1/apps` until every
 * selected device reports the app `running`, for N simulated devices (real
 * agents over in-memory runtimes, see sim/) against an in-process hub, and
 * what that costs in memory. Runs a 1-device baseline first, in the same
 * process, and prints the ratio.
 *
 *   npx tsx bench/fleet-apply.ts --devices 200 [--pull-delay-ms 0] [--runs 1] [--json]
 *
 * Hub and agents share this process, so RSS is the whole simulation's; the
 * "per device" column is (RSS with the fleet − RSS before it) / N, i.e. what
 * one in-process agent costs, not what a device's separate agent process would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type Hub, startHub } from '../broker/hub.js';
import type { DeviceView } from '../shared/index.js';
import { startFleet } from '../test/support/sim/fleet.js';
import { positiveInt } from './int-arg.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '200' },
    'pull-delay-ms': { type: 'string', default: '0' },
    runs: { type: 'string', default: '1' },
    'timeout-s': { type: 'string', default: '300' },
    'poll-ms': { type: 'string', default: '100' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (args.help) {
  console.log('usage: npx tsx bench/fleet-apply.ts [--devices N] [--pull-delay-ms MS] [--runs R] [--timeout-s S] [--poll-ms MS] [--json]');
  process.exit(0);
}

const DEVICES = positiveInt('devices', args.devices);
const PULL_DELAY_MS = positiveInt('pull-delay-ms', args['pull-delay-ms'], 0);
const RUNS = positiveInt('runs', args.runs);
const TIMEOUT_MS = positiveInt('timeout-s', args['timeout-s']) * 1000;
const POLL_MS = positiveInt('poll-ms', args['poll-ms']);

interface Result {
  devices: number;
  run: number;
  /** startFleet: every agent constructed (SQLite opened, MQTT connect begun). */
  startMs: number;
  /** Start of all agents until the hub lists every device online. */
  onlineMs: number;
  /** apps.apply over HTTP until every device reports the app running. */
  convergeMs: number;
  /** CPU time of the whole process (hub, agents, poller) from apply to convergence: robust to a busy machine, unlike wall time. */
  convergeCpuMs: number;
  /** When the first and the median device were first seen running. */
  firstMs: number;
  p50Ms: number;
  rssBeforeMb: number;
  rssFleetMb: number;
  rssAfterMb: number;
  heapAfterMb: number;
  perDeviceKb: number;
  heapPerDeviceKb: number;
  runtimeCalls: number;
}

const mb = (bytes: number) => bytes / 1024 / 1024;

// A full GC before every reading, so heap numbers are live objects and compare across runs.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function memory(): { rss: number; heap: number } {
  gc();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heap: usage.heapUsed };
}

async function api<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(devices: number, run: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-'));
  let hub: Hub | undefined;
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  try {
    // Every simulated device connects from 127.0.0.1: no per-address limit.
    hub = await startHub({
      dataDir: join(dir, 'hub'),
      host: '127.0.0.1',
      mqttPort: 0,
      wsPort: 0,
      httpPort: 0,
      logLevel: 'silent',
      maxConnectRatePerAddress: 0,
    });
    const base = `http://127.0.0.1:${hub.ports.http}`;
    const before = memory();

    const startedAt = performance.now();
    fleet = await startFleet({
      hubUrl: `mqtt://127.0.0.1:${hub.ports.mqtt}`,
      count: devices,
      idPrefix: `bench${run}`,
      labels: () => ({ bench: 'yes' }),
      pullDelayMs: PULL_DELAY_MS,
      dataRoot: join(dir, 'fleet'),
    });
    const startMs = performance.now() - startedAt;
    const list = () => api<{ items: DeviceView[] }>(base, 'GET', '/api/v1/devices').then((r) => r.items);
    await until(`${devices} devices online`, async () => (await list()).filter((d) => d.online).length === devices);
    const onlineMs = performance.now() - startedAt;
    const withFleet = memory();

    const spec = {
      name: 'bench',
      scheduling: { selectors: { bench: 'yes' } },
      spec: { containers: [{ name: 'app', image: `registry.local/bench:${run}` }], update: { minReadySeconds: 0 } },
    };
    const applyAt = performance.now();
    const cpuAtApply = process.cpuUsage();
    await api(base, 'POST', '/api/v1/apps', spec);
    const seenRunning = new Map<string, number>();
    await until(`${devices} devices running the app`, async () => {
      const now = performance.now() - applyAt;
      for (const device of await list()) {
        if (!seenRunning.has(device.id) && device.apps.some((a) => a.name === 'bench' && a.phase === 'running')) {
          seenRunning.set(device.id, now);
        }
      }
      return seenRunning.size === devices;
    });
    const convergeMs = performance.now() - applyAt;
    const cpu = process.cpuUsage(cpuAtApply);
    const times = [...seenRunning.values()].sort((a, b) => a - b);
    const after = memory();

    return {
      devices,
      run,
      startMs,
      onlineMs,
      convergeMs,
      convergeCpuMs: (cpu.user + cpu.system) / 1000,
      firstMs: times[0] ?? convergeMs,
      p50Ms: times[Math.floor((times.length - 1) / 2)] ?? convergeMs,
      rssBeforeMb: mb(before.rss),
      rssFleetMb: mb(withFleet.rss),
      rssAfterMb: mb(after.rss),
      heapAfterMb: mb(after.heap),
      perDeviceKb: (withFleet.rss - before.rss) / 1024 / devices,
      heapPerDeviceKb: (withFleet.heap - before.heap) / 1024 / devices,
      runtimeCalls: fleet.runtimes.reduce((sum, r) => sum + Object.values(r.calls).reduce((a, b) => a + b, 0), 0),
    };
  } finally {
    await fleet?.close();
    await hub?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function until(what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + TIMEOUT_MS;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${TIMEOUT_MS / 1000} s waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

function table(results: readonly Result[], baselineMs: number): string {
  const header = [
    'devices',
    'run',
    'start ms',
    'online ms',
    'apply→all running ms',
    'CPU ms',
    'first ms',
    'p50 ms',
    'vs N=1',
    'RSS before→fleet→after MB',
    'RSS KB/dev',
    'heap KB/dev',
  ];
  const rows = results.map((r) => [
    String(r.devices),
    String(r.run),
    r.startMs.toFixed(0),
    r.onlineMs.toFixed(0),
    r.convergeMs.toFixed(0),
    r.convergeCpuMs.toFixed(0),
    r.firstMs.toFixed(0),
    r.p50Ms.toFixed(0),
    `${(r.convergeMs / baselineMs).toFixed(2)}x`,
    `${r.rssBeforeMb.toFixed(0)}→${r.rssFleetMb.toFixed(0)}→${r.rssAfterMb.toFixed(0)}`,
    r.perDeviceKb.toFixed(0),
    r.heapPerDeviceKb.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

async function main(): Promise<void> {
  // A discarded warm-up (module loading, JIT), then the 1-device baseline as often as the
  // N-device run: the same code path, so the ratio isolates what fan-out to N devices costs.
  await measure(1, 0);
  const baselines: Result[] = [];
  const fleets: Result[] = [];
  for (let run = 1; run <= RUNS; run++) baselines.push(await measure(1, run));
  for (let run = 1; run <= RUNS; run++) fleets.push(await measure(DEVICES, run));
  const baselineMs = median(baselines.map((r) => r.convergeMs));
  const fleetMs = median(fleets.map((r) => r.convergeMs));

  if (args.json) {
    console.log(
      JSON.stringify(
        { node: process.version, pullDelayMs: PULL_DELAY_MS, baselineMs, fleetMs, results: [...baselines, ...fleets] },
        null,
        2,
      ),
    );
  } else {
    console.log(`fleet-apply: node ${process.version}, ${RUNS} run(s), pull delay ${PULL_DELAY_MS} ms, state floor 500 ms (agent default)`);
    console.log(table([...baselines, ...fleets], baselineMs));
    console.log(
      `median apply→all running: N=1 ${baselineMs.toFixed(0)} ms, N=${DEVICES} ${fleetMs.toFixed(0)} ms (${(fleetMs / baselineMs).toFixed(2)}x)`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
