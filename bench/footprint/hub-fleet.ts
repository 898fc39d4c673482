/**
 * The hub at rest and under a fleet: `flotilla server` (a child process, temp
 * data dir, defaults but for connection pacing, which would spread 5,000
 * connections from one address over a minute) measured over three windows:
 *
 *   1. at rest: nobody connected;
 *   2. fleet:   N simulated devices (telemetry/load.ts: one MQTT connection
 *               each, status, then QoS 1 log batches and metrics samples)
 *               publishing `--rate` messages/s together, the agents' default
 *               cadence by default (a log batch and a sample per device every
 *               10 s: N / 5 messages/s);
 *   3. scrape:  the same fleet, with GET /metrics every `--scrape-every-s`.
 *
 * Per window: RSS (VmRSS every 500 ms: last and highest), CPU of the whole
 * process and of its main thread alone (the telemetry writer is a thread of
 * its own), and the main thread's event-loop delay (telemetry/loop-delay.mjs:
 * monitorEventLoopDelay every 10 ms, so a figure includes up to 10 ms of
 * sampling interval). Scrape times are measured from this process.
 *
 *   npx tsx bench/footprint/hub-fleet.ts [--devices 5000] [--rate N] [--window-s 30] [--scrape-every-s 5] [--built] [--json]
 *
 * `--built` runs the release bundle (dist/cli/bin.js, `npm run build` first), as footprint.ts does.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { positiveInt } from '../int-arg.js';
import type { LoadCommand, LoadReply } from '../telemetry/load.js';
import { clockTicksPerSecond, readMemory } from './proc.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '5000' },
    rate: { type: 'string' },
    'window-s': { type: 'string', default: '30' },
    'scrape-every-s': { type: 'string', default: '5' },
    /** Run the release bundle (`npm run build` first) instead of the sources through tsx. */
    built: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (args.help) {
  console.log(
    'usage: npx tsx bench/footprint/hub-fleet.ts [--devices N] [--rate MSG_PER_S] [--window-s S] [--scrape-every-s S] [--built] [--json]',
  );
  process.exit(0);
}

const DEVICES = positiveInt('devices', args.devices);
/** The agent's defaults: a metrics sample and (with any lines) a log batch every 10 s. */
const RATE = args.rate === undefined ? Math.max(1, Math.round(DEVICES / 5)) : positiveInt('rate', args.rate);
const WINDOW_MS = positiveInt('window-s', args['window-s']) * 1000;
const SCRAPE_EVERY_MS = positiveInt('scrape-every-s', args['scrape-every-s']) * 1000;
const HOST = '127.0.0.1';

const children: ChildProcess[] = [];
let dataRoot: string | undefined;
function cleanup(): void {
  for (const child of children) child.kill('SIGKILL');
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** utime + stime of one thread (the main thread's id is the pid), in clock ticks. */
function threadCpuTicks(pid: number, tid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function processCpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

interface LoopDelay {
  maxMs: number;
  p99Ms: number;
}

function askLoopDelay(child: ChildProcess): Promise<LoopDelay> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the hub did not answer for its loop delay')), 10_000);
    const onMessage = (message: { type?: string } & LoopDelay) => {
      if (message?.type !== 'loop-delay') return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    child.send({ type: 'loop-delay' });
  });
}

async function startHub(): Promise<{ child: ChildProcess; mqttPort: number; httpUrl: string }> {
  dataRoot = mkdtempSync(join(tmpdir(), 'flotilla-bench-hub-fleet-'));
  const [mqttPort, wsPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [
      '--import',
      fileURLToPath(new URL('../telemetry/loop-delay.mjs', import.meta.url)),
      fileURLToPath(new URL(args.built ? '../../dist/cli/bin.js' : '../../cli/flotilla.js', import.meta.url)),
      'server',
      ...['--data-dir', join(dataRoot, 'hub'), '--host', HOST],
      ...['--mqtt-port', String(mqttPort), '--ws-port', String(wsPort), '--http-port', String(httpPort)],
      ...['--max-connect-rate', '0', '--max-connect-rate-per-address', '0', '--log-level', 'warn'],
    ],
    { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  children.push(child);
  const httpUrl = `http://${HOST}:${httpPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`flotilla server exited with ${child.exitCode}`);
    if (
      await fetch(`${httpUrl}/api/v1/devices`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) throw new Error('the hub did not start in 30 s');
    await sleep(100);
  }
  return { child, mqttPort, httpUrl };
}

class Generator {
  private readonly child = fork(fileURLToPath(new URL('../telemetry/load.ts', import.meta.url)), [], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });

  constructor() {
    children.push(this.child);
  }

  request<T extends LoadReply['type']>(cmd: LoadCommand, answer: T): Promise<Extract<LoadReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (reply: LoadReply) => {
        if (reply.type === 'error') return reject(new Error(reply.message));
        if (reply.type !== answer) return;
        this.child.off('message', onMessage);
        resolve(reply as Extract<LoadReply, { type: T }>);
      };
      this.child.on('message', onMessage);
      this.child.send(cmd);
    });
  }

  stop(): void {
    if (this.child.connected) this.child.send({ type: 'stop' } satisfies LoadCommand);
    this.child.kill('SIGTERM');
  }
}

interface WindowResult {
  window: string;
  devices: number;
  offeredRate: number;
  rssLastMiB: number;
  rssMaxMiB: number;
  anonLastMiB: number;
  cpuPct: number;
  mainThreadCpuPct: number;
  loopMaxMs: number;
  loopP99Ms: number;
  scrapes?: { count: number; medianMs: number; maxMs: number; bodyKiB: number };
}

/** One window: samples RSS, runs `during` (scrapes), and reads CPU and loop delay around it. */
async function measure(
  hub: ChildProcess,
  window: string,
  devices: number,
  offeredRate: number,
  during?: () => Promise<WindowResult['scrapes']>,
): Promise<WindowResult> {
  const pid = hub.pid!;
  const hz = clockTicksPerSecond();
  let rssMax = 0;
  let last = readMemory(pid);
  const sampler = setInterval(() => {
    last = readMemory(pid);
    rssMax = Math.max(rssMax, last.rssKb);
  }, 500);
  await askLoopDelay(hub);
  const cpu0 = processCpuTicks(pid);
  const main0 = threadCpuTicks(pid, pid);
  const t0 = performance.now();
  const scrapes = await (during ?? (() => sleep(WINDOW_MS).then(() => undefined)))();
  const seconds = (performance.now() - t0) / 1000;
  const loop = await askLoopDelay(hub);
  const cpu1 = processCpuTicks(pid);
  const main1 = threadCpuTicks(pid, pid);
  clearInterval(sampler);
  last = readMemory(pid);
  rssMax = Math.max(rssMax, last.rssKb);
  return {
    window,
    devices,
    offeredRate,
    rssLastMiB: last.rssKb / 1024,
    rssMaxMiB: rssMax / 1024,
    anonLastMiB: last.anonKb / 1024,
    cpuPct: ((cpu1 - cpu0) / hz / seconds) * 100,
    mainThreadCpuPct: ((main1 - main0) / hz / seconds) * 100,
    loopMaxMs: loop.maxMs,
    loopP99Ms: loop.p99Ms,
    ...(scrapes ? { scrapes } : {}),
  };
}

async function scrapeFor(httpUrl: string): Promise<WindowResult['scrapes']> {
  const times: number[] = [];
  let bytes = 0;
  const end = performance.now() + WINDOW_MS;
  while (performance.now() < end) {
    const start = performance.now();
    const body = await (await fetch(`${httpUrl}/metrics`)).text();
    times.push(performance.now() - start);
    bytes = Buffer.byteLength(body);
    await sleep(Math.max(0, Math.min(SCRAPE_EVERY_MS, end - performance.now())));
  }
  times.sort((a, b) => a - b);
  return { count: times.length, medianMs: times[Math.floor(times.length / 2)]!, maxMs: times.at(-1)!, bodyKiB: bytes / 1024 };
}

async function main(): Promise<void> {
  const { child: hub, mqttPort, httpUrl } = await startHub();
  await sleep(5000);
  const results: WindowResult[] = [await measure(hub, 'at rest', 0, 0)];

  const generator = new Generator();
  const connectStart = performance.now();
  await generator.request({ type: 'start', host: HOST, port: mqttPort, devices: DEVICES, window: 8, idPrefix: 'fleet' }, 'ready');
  const connectS = (performance.now() - connectStart) / 1000;
  if (!args.json) console.error(`${DEVICES} devices connected in ${connectS.toFixed(1)} s; publishing ${RATE} msg/s`);
  // Every device has sent a sample (the per-device series are all there) before the scrape
  // window: one in ten messages is a sample, and the fleet window passes meanwhile.
  const settleMs = Math.max(10_000, (DEVICES / RATE) * 10 * 1000 + 2000 - WINDOW_MS);
  // The fleet publishes from here to the end: a step as long as the settling, both windows and a margin.
  const step = generator.request({ type: 'step', rate: RATE, durationMs: settleMs + 2 * WINDOW_MS + 10_000 }, 'stepDone');
  await sleep(settleMs);
  results.push(await measure(hub, 'fleet', DEVICES, RATE));
  results.push(await measure(hub, 'fleet + scrapes', DEVICES, RATE, () => scrapeFor(httpUrl)));
  const done = await step;
  generator.stop();

  const report = {
    node: process.version,
    cpus: cpus().length,
    loadavg1: Number(loadavg()[0]!.toFixed(2)),
    devices: DEVICES,
    rate: RATE,
    launcher: args.built ? 'built' : 'tsx',
    windowS: WINDOW_MS / 1000,
    connectS: Number(connectS.toFixed(1)),
    sent: done.sent,
    shed: done.shed,
    windows: results,
  };
  if (!args.json) {
    console.log(
      `hub-fleet: ${report.launcher}, node ${report.node}, ${report.cpus} CPUs, load ${report.loadavg1}, windows of ${report.windowS} s`,
    );
    console.log(
      '| window | devices | msg/s | RSS MiB (last / max) | anon MiB | CPU % of a core | main thread CPU % | loop max ms | loop p99 ms | scrapes (n, median / max ms, KiB) |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of results) {
      const scrapes = r.scrapes
        ? `${r.scrapes.count}, ${r.scrapes.medianMs.toFixed(0)} / ${r.scrapes.maxMs.toFixed(0)}, ${r.scrapes.bodyKiB.toFixed(0)}`
        : '–';
      console.log(
        `| ${r.window} | ${r.devices} | ${r.offeredRate} | ${r.rssLastMiB.toFixed(1)} / ${r.rssMaxMiB.toFixed(1)} | ${r.anonLastMiB.toFixed(1)} | ${r.cpuPct.toFixed(1)} | ${r.mainThreadCpuPct.toFixed(1)} | ${r.loopMaxMs.toFixed(0)} | ${r.loopP99Ms.toFixed(0)} | ${scrapes} |`,
      );
    }
  }
  console.log(JSON.stringify(report, null, 2));
}

main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    cleanup();
    process.exit(1);
  },
);
