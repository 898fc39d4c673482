/**
 * Telemetry ingest benchmark: simulated devices publish log batches and
 * metrics at QoS 1 at stepped rates, and three targets take the same load in
 * the same run, each in its own process:
 *
 *   - flotilla:  `flotilla server` on a temp data dir. Ingested = stored in
 *                telemetry.db (read here, read-only); a message counts once,
 *                however many lines it has.
 *   - aedes:     the hub's broker module with no hooks (telemetry/aedes-relay.ts)
 *   - mosquitto: Debian's `mosquitto` with a minimal loopback config.
 *                For these two, relayed = received by one subscriber on every
 *                device's logs and metrics (`…/devices/+/logs`, `…/+/metrics`,
 *                QoS 1) in this process.
 *
 *   npx tsx bench/telemetry-ingest.ts [--devices 100] [--window 8] [--rates 5000,10000,20000,30000,40000,max,80%]
 *                                     [--step-s 10] [--targets flotilla,aedes,mosquitto] [--node-flags "--max-semi-space-size=2"] [--json]
 *
 * `--node-flags` starts the hub and Aedes processes with these node flags (the
 * load generator keeps node's defaults), for the cost of V8 settings under ingest.
 *
 * The load generator is a child process (telemetry/load.ts); the broker is
 * another; this process runs the latency probe and the counting. Latency is
 * from a probe device's publish (~100 one-line batches/s, its send time in
 * the line) until the line is queryable — seen on the hub's SSE follow
 * stream, which emits rows once committed — or until the subscriber gets it.
 * Probe and observer share this process's clock.
 *
 * Every step ends with a drain: wait until everything the generator sent is
 * stored/relayed (or --drain-s passes); loss = sent − stored after it.
 *
 * A rate `N%` is N % of what the same target took in its last `max` step.
 * In the Node.js brokers, telemetry/loop-delay.mjs samples the main thread's
 * event-loop delay (perf_hooks.monitorEventLoopDelay, every 10 ms) over each
 * step: its max is the longest the loop was held at once, plus up to the
 * 10 ms sampling interval. "loop CPU" is the main thread's alone (the hub's
 * telemetry writer thread is in "broker CPU").
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { DEFAULT_TOPIC_ROOT, Topics } from '../shared/index.js';
import { positiveInt } from './int-arg.js';
import type { LoadCommand, LoadReply } from './telemetry/load.js';
import { WireClient } from './telemetry/wire.js';

const TARGETS = ['flotilla', 'aedes', 'mosquitto'] as const;
type TargetName = (typeof TARGETS)[number];

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '100' },
    window: { type: 'string', default: '8' },
    rates: { type: 'string', default: '5000,10000,20000,30000,40000,max,80%' },
    'step-s': { type: 'string', default: '10' },
    'drain-s': { type: 'string', default: '20' },
    'probe-hz': { type: 'string', default: '100' },
    targets: { type: 'string', default: TARGETS.join(',') },
    'cpu-prof': { type: 'string' },
    'node-flags': { type: 'string', default: '' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (args.help) {
  console.log(
    'usage: npx tsx bench/telemetry-ingest.ts [--devices N] [--window W] [--rates R1,R2,…,max] [--step-s S] [--drain-s S] [--probe-hz HZ] [--targets flotilla,aedes,mosquitto] [--cpu-prof DIR] [--node-flags "--max-semi-space-size=2 …"] [--json]',
  );
  process.exit(0);
}

const DEVICES = positiveInt('devices', args.devices);
const WINDOW = positiveInt('window', args.window);
const STEP_MS = positiveInt('step-s', args['step-s']) * 1000;
const DRAIN_MS = positiveInt('drain-s', args['drain-s']) * 1000;
const PROBE_HZ = positiveInt('probe-hz', args['probe-hz']);
/** A fixed offer in msg/s, as fast as the in-flight windows allow (`max`), or a share of the target's last max step. */
type RateSpec = { kind: 'fixed'; rate: number } | { kind: 'max' } | { kind: 'share'; percent: number };
const RATES: RateSpec[] = args.rates.split(',').map((text): RateSpec => {
  const r = text.trim();
  if (r === 'max') return { kind: 'max' };
  if (r.endsWith('%')) return { kind: 'share', percent: positiveInt('rates', r.slice(0, -1)) };
  return { kind: 'fixed', rate: positiveInt('rates', r) };
});
const SELECTED = args.targets.split(',').map((t) => {
  if (!(TARGETS as readonly string[]).includes(t)) {
    console.error(`--targets: unknown target "${t}" (known: ${TARGETS.join(', ')})`);
    process.exit(2);
  }
  return t as TargetName;
});

/** `--cpu-prof DIR`: the Node.js brokers (flotilla, aedes) write a V8 CPU profile there when they stop. */
const PROFILE_ARGS = args['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']] : [];
/** Node flags for the hub and Aedes processes alone (the load generator keeps node's defaults). */
const NODE_FLAGS = args['node-flags'].split(' ').filter((flag) => flag !== '');
const LOOP_DELAY_ARGS = ['--import', fileURLToPath(new URL('./telemetry/loop-delay.mjs', import.meta.url))];
const HOST = '127.0.0.1';
const PROBE_DEVICE = 'bench-probe';
const topics = new Topics(DEFAULT_TOPIC_ROOT);
const CLK_TCK = 100;

interface StepResult {
  target: TargetName;
  /** Offered msg/s; 0 = as fast as the windows allow. */
  rate: number;
  /** The percentage of the last max step this offer is, when given as one. */
  share: number | null;
  /** What the generator wrote to the broker during the step, msg/s. */
  sentRate: number;
  /** Stored (flotilla) or relayed (others) during the step, msg/s. */
  ingestRate: number;
  /** Offer the generator could not send because every window was full (over BACKLOG_S). */
  shed: number;
  sent: number;
  lost: number;
  drainMs: number;
  probes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Broker process CPU over the step, % of one core. */
  brokerCpuPct: number;
  /** The broker's main thread alone (its event loop), % of one core. */
  loopCpuPct: number;
  /** Event-loop delay over the step (Node.js brokers): the longest and the 99th percentile, ms. */
  loopMaxMs: number;
  loopP99Ms: number;
  /** Broker CPU per message ingested, µs. */
  brokerUsPerMsg: number;
  generatorCpuPct: number;
  /** Highest VmRSS sampled (every 200 ms) during the step and its drain. */
  peakRssMb: number;
}

interface TargetResult {
  target: TargetName;
  steps: StepResult[];
  /** VmHWM at the end: the process's peak RSS over the whole run. */
  vmHwmMb: number;
  sent: number;
  stored: number;
}

// ---- cleanup, also on Ctrl-C ------------------------------------------------------------

const cleanups = new Map<string, () => void>();

function onCleanup(key: string, fn: () => void): () => void {
  cleanups.set(key, fn);
  return () => {
    cleanups.delete(key);
    fn();
  };
}

function cleanupAll(): void {
  for (const fn of [...cleanups.values()].reverse()) {
    try {
      fn();
    } catch {
      // best effort: the process is leaving
    }
  }
  cleanups.clear();
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping child processes and removing temp dirs`);
    cleanupAll();
    process.exit(130);
  });
}

// ---- small helpers ----------------------------------------------------------------------

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

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await probe())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(50);
  }
}

function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** utime + stime of every thread of the process (or of one thread, `tid`), ms. */
function procCpuMs(pid: number, tid?: number): number {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return 0;
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Keeps the last few KB a child wrote, to quote when it fails. */
function tail(child: ChildProcess): () => string {
  let text = '';
  const keep = (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => text;
}

function forkTs(file: string, argv: string[], nodeArgs: string[] = []): ChildProcess {
  return fork(fileURLToPath(new URL(file, import.meta.url)), argv, {
    execArgv: [...nodeArgs, '--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

// ---- targets ----------------------------------------------------------------------------

interface Target {
  pid: number;
  mqttPort: number;
  /** Generator messages (not the probe's) stored or relayed so far. */
  count(): number;
  /** Starts observing the probe device: `seen(line)` for each of its lines once queryable/relayed. */
  observeProbe(seen: (line: string) => void): Promise<void>;
  /** The event-loop delay since the last call (Node.js brokers; see telemetry/loop-delay.mjs). */
  loopDelay(): Promise<LoopDelay | undefined>;
  close(): Promise<void>;
}

interface LoopDelay {
  maxMs: number;
  p99Ms: number;
}

/** Asks a child preloaded with telemetry/loop-delay.mjs for its figures (and resets them). */
function askLoopDelay(child: ChildProcess): Promise<LoopDelay | undefined> {
  if (!child.connected) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), 5000);
    const onMessage = (message: { type?: string } & LoopDelay) => {
      if (message?.type === 'loop-delay') done(message);
    };
    const done = (answer: LoopDelay | undefined) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(answer);
    };
    child.on('message', onMessage);
    child.send({ type: 'loop-delay' });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

async function stopChild(child: ChildProcess, key: string): Promise<void> {
  cleanups.delete(key);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited(child);
  clearTimeout(timer);
}

async function startFlotilla(dir: string): Promise<Target> {
  const [mqttPort, wsPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const dataDir = join(dir, 'hub');
  const child = spawn(
    process.execPath,
    [
      ...NODE_FLAGS,
      ...PROFILE_ARGS,
      ...LOOP_DELAY_ARGS,
      fileURLToPath(new URL('../cli/flotilla.js', import.meta.url)),
      'server',
      '--data-dir',
      dataDir,
      '--host',
      HOST,
      '--mqtt-port',
      String(mqttPort),
      '--ws-port',
      String(wsPort),
      '--http-port',
      String(httpPort),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  onCleanup('flotilla', () => child.kill('SIGKILL'));
  const output = tail(child);
  const api = `http://${HOST}:${httpPort}/api/v1`;
  try {
    await until('the hub', async () => {
      if (child.exitCode !== null) throw new Error(`flotilla server exited with ${child.exitCode}:\n${output()}`);
      return fetch(`${api}/devices`).then(
        (res) => res.ok,
        () => false,
      );
    });
  } catch (err) {
    await stopChild(child, 'flotilla');
    throw err;
  }

  const db = new Database(join(dataDir, 'telemetry.db'), { readonly: true, fileMustExist: true });
  const maxId = (table: 'log_batches' | 'metrics') => db.prepare(`SELECT coalesce(max(id), 0) FROM ${table}`).pluck();
  const maxLog = maxId('log_batches');
  const maxMetric = maxId('metrics');
  // Rows are counted once, in id ranges: one row per message.
  const newLogs = db.prepare('SELECT count(*) FROM log_batches WHERE id > ? AND id <= ? AND device != ?').pluck();
  const newMetrics = db.prepare('SELECT count(*) FROM metrics WHERE id > ? AND id <= ? AND device != ?').pluck();
  let lastLog = 0;
  let lastMetric = 0;
  let counted = 0;
  let abort: AbortController | undefined;

  return {
    pid: child.pid!,
    mqttPort,
    loopDelay: () => askLoopDelay(child),
    count() {
      const log = maxLog.get() as number;
      const metric = maxMetric.get() as number;
      counted += (newLogs.get(lastLog, log, PROBE_DEVICE) as number) + (newMetrics.get(lastMetric, metric, PROBE_DEVICE) as number);
      lastLog = log;
      lastMetric = metric;
      return counted;
    },
    async observeProbe(seen) {
      // The logs API answers 404 until the device is known (its status was stored).
      await until('the probe device to be known', async () => (await fetch(`${api}/devices/${PROBE_DEVICE}`)).ok);
      abort = new AbortController();
      const res = await fetch(`${api}/devices/${PROBE_DEVICE}/logs?follow=true&tail=0`, { signal: abort.signal });
      if (!res.ok || !res.body) throw new Error(`follow: HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = '';
      let opened: () => void = () => {};
      const open = new Promise<void>((resolve) => {
        opened = resolve;
      });
      void (async () => {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
          if (done) return;
          buffered += value;
          let end = buffered.indexOf('\n\n');
          while (end >= 0) {
            const event = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            if (event.startsWith(': following')) opened();
            const data = event.split('\n').find((l) => l.startsWith('data: '));
            if (data) seen((JSON.parse(data.slice(6)) as { line: string }).line);
            end = buffered.indexOf('\n\n');
          }
        }
      })();
      await open;
    },
    async close() {
      abort?.abort();
      db.close();
      await stopChild(child, 'flotilla');
    },
  };
}

/** A subscriber on every device's channels, counting what the broker relays; it also sees the probe. */
async function relayTarget(
  pid: number,
  mqttPort: number,
  stop: () => Promise<void>,
  loopDelay: () => Promise<LoopDelay | undefined> = async () => undefined,
): Promise<Target> {
  const probeTopic = topics.device(PROBE_DEVICE, 'logs');
  let relayed = 0;
  let onProbe: (line: string) => void = () => {};
  const subscriber = await WireClient.connect({
    host: HOST,
    port: mqttPort,
    clientId: 'bench-counter',
    onMessage(topic, payload) {
      if (topic === probeTopic) onProbe((JSON.parse(payload.toString()) as { lines: { line: string }[] }).lines[0]!.line);
      else relayed++;
    },
  });
  await subscriber.subscribe([topics.allDevices('logs'), topics.allDevices('metrics')]);
  return {
    pid,
    mqttPort,
    count: () => relayed,
    loopDelay,
    async observeProbe(seen) {
      onProbe = seen;
    },
    async close() {
      subscriber.close();
      await stop();
    },
  };
}

async function startAedes(): Promise<Target> {
  const port = await freePort();
  const child = forkTs('./telemetry/aedes-relay.ts', [String(port)], [...NODE_FLAGS, ...PROFILE_ARGS, ...LOOP_DELAY_ARGS]);
  onCleanup('aedes', () => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`aedes relay exited with ${code}`)));
  });
  return relayTarget(
    child.pid!,
    port,
    () => stopChild(child, 'aedes'),
    () => askLoopDelay(child),
  );
}

async function startMosquitto(dir: string): Promise<Target> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} ${HOST}`,
      'allow_anonymous true',
      'persistence false',
      // Mosquitto's per-client flow limits, which Aedes does not have: the default
      // 1000 queued messages per client would drop QoS 1 messages for the one
      // subscriber that receives every device's traffic, and 20 in flight to it
      // would cap the relay at 20 per round trip.
      'max_queued_messages 0',
      'max_inflight_messages 0',
      '',
    ].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  onCleanup('mosquitto', () => child.kill('SIGKILL'));
  const output = tail(child);
  await until('mosquitto', async () => {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}:\n${output()}`);
    return portOpen(port);
  });
  return relayTarget(child.pid!, port, () => stopChild(child, 'mosquitto'));
}

// ---- the load generator -----------------------------------------------------------------

class Generator {
  private waiting: ((reply: LoadReply) => void) | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: LoadReply) => {
      if (reply.type === 'error') {
        console.error(`load generator: ${reply.message}`);
        return;
      }
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.(reply);
    });
  }

  static start(): Generator {
    const child = forkTs('./telemetry/load.ts', []);
    onCleanup('generator', () => child.kill('SIGKILL'));
    return new Generator(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  request<T extends LoadReply['type']>(cmd: LoadCommand, answer: T): Promise<Extract<LoadReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load generator exited with ${code}`));
      this.child.once('exit', onExit);
      this.waiting = (reply) => {
        this.child.off('exit', onExit);
        if (reply.type !== answer) reject(new Error(`load generator answered ${reply.type}, expected ${answer}`));
        else resolve(reply as Extract<LoadReply, { type: T }>);
      };
      this.child.send(cmd);
    });
  }

  async stop(): Promise<void> {
    if (this.child.connected) this.child.send({ type: 'stop' } satisfies LoadCommand);
    await stopChild(this.child, 'generator');
  }
}

// ---- the probe --------------------------------------------------------------------------

/** One-line log batches carrying their send time (this process's performance.now()). */
class Probe {
  readonly samples: { sentAt: number; latencyMs: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;

  private constructor(private readonly client: WireClient) {}

  static async connect(port: number): Promise<Probe> {
    const client = await WireClient.connect({ host: HOST, port, clientId: PROBE_DEVICE });
    client.publish(Buffer.from(topics.device(PROBE_DEVICE, 'status')), JSON.stringify({ online: true, at: new Date().toISOString() }));
    return new Probe(client);
  }

  seen = (line: string): void => {
    const sentAt = Number(line.slice('probe '.length));
    this.samples.push({ sentAt, latencyMs: performance.now() - sentAt });
  };

  start(hz: number): void {
    const topic = Buffer.from(topics.device(PROBE_DEVICE, 'logs'));
    this.timer = setInterval(() => {
      const line = {
        app: 'probe',
        container: 'probe',
        stream: 'stdout',
        ts: new Date().toISOString(),
        line: `probe ${performance.now().toFixed(3)}`,
      };
      this.client.publish(topic, JSON.stringify({ seq: this.seq++, lines: [line] }));
    }, 1000 / hz);
  }

  between(from: number, to: number): number[] {
    return this.samples
      .filter((s) => s.sentAt >= from && s.sentAt < to)
      .map((s) => s.latencyMs)
      .sort((a, b) => a - b);
  }

  close(): void {
    clearInterval(this.timer);
    this.client.close();
  }
}

// ---- one target, every step -------------------------------------------------------------

async function measure(name: TargetName): Promise<TargetResult> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-ingest-'));
  const removeDir = onCleanup('dir', () => rmSync(dir, { recursive: true, force: true }));
  let target: Target | undefined;
  let generator: Generator | undefined;
  let probe: Probe | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    target = name === 'flotilla' ? await startFlotilla(dir) : name === 'aedes' ? await startAedes() : await startMosquitto(dir);
    const pid = target.pid;
    generator = Generator.start();
    await generator.request(
      { type: 'start', host: HOST, port: target.mqttPort, devices: DEVICES, window: WINDOW, idPrefix: 'bench' },
      'ready',
    );
    probe = await Probe.connect(target.mqttPort);
    await target.observeProbe(probe.seen);
    probe.start(PROBE_HZ);

    let peakKb = 0;
    sampler = setInterval(() => {
      peakKb = Math.max(peakKb, procStatusKb(pid, 'VmRSS'));
    }, 200);

    const steps: StepResult[] = [];
    let lostBefore = 0;
    let lastMaxRate: number | undefined;
    for (const spec of RATES) {
      if (spec.kind === 'share' && lastMaxRate === undefined) throw new Error(`--rates: ${spec.percent}% needs a max step before it`);
      const rate =
        spec.kind === 'fixed' ? spec.rate : spec.kind === 'max' ? 0 : Math.max(1, Math.round((lastMaxRate! * spec.percent) / 100));
      peakKb = procStatusKb(pid, 'VmRSS');
      await target.loopDelay();
      const count0 = target.count();
      const cpu0 = procCpuMs(pid);
      const loopCpu0 = procCpuMs(pid, pid);
      const genBefore = await generator.request({ type: 'stats' }, 'stats');
      const t0 = performance.now();
      const done = await generator.request({ type: 'step', rate, durationMs: STEP_MS }, 'stepDone');
      const t1 = performance.now();
      const count1 = target.count();
      const cpu1 = procCpuMs(pid);
      const loopCpu1 = procCpuMs(pid, pid);
      const loop = await target.loopDelay();

      const drainStart = performance.now();
      let stored = count1;
      while (stored < done.sent && performance.now() - drainStart < DRAIN_MS) {
        await sleep(50);
        stored = target.count();
      }
      const drainMs = performance.now() - drainStart;
      // Probes still in flight at the end of the step arrive during the drain.
      await sleep(200);
      const lostNow = done.sent - target.count();
      const latencies = probe.between(t0, t1);
      const seconds = (t1 - t0) / 1000;
      const ingested = count1 - count0;
      steps.push({
        target: name,
        rate,
        share: spec.kind === 'share' ? spec.percent : null,
        sentRate: (done.sent - genBefore.sent) / seconds,
        ingestRate: ingested / seconds,
        shed: done.shed,
        sent: done.sent - genBefore.sent,
        lost: lostNow - lostBefore,
        drainMs,
        probes: latencies.length,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        maxMs: latencies.at(-1) ?? Number.NaN,
        brokerCpuPct: ((cpu1 - cpu0) / (t1 - t0)) * 100,
        loopCpuPct: ((loopCpu1 - loopCpu0) / (t1 - t0)) * 100,
        loopMaxMs: loop?.maxMs ?? Number.NaN,
        loopP99Ms: loop?.p99Ms ?? Number.NaN,
        brokerUsPerMsg: ingested > 0 ? ((cpu1 - cpu0) * 1000) / ingested : Number.NaN,
        generatorCpuPct: ((done.cpuMs - genBefore.cpuMs) / (t1 - t0)) * 100,
        peakRssMb: peakKb / 1024,
      });
      lostBefore = lostNow;
      if (spec.kind === 'max') lastMaxRate = ingested / seconds;
      if (!args.json) console.error(`  ${name} ${rate === 0 ? 'max' : rate}: ${formatRow(steps.at(-1)!).join('  ')}`);
    }
    const final = await generator.request({ type: 'stats' }, 'stats');
    return { target: name, steps, vmHwmMb: procStatusKb(pid, 'VmHWM') / 1024, sent: final.sent, stored: target.count() };
  } finally {
    clearInterval(sampler);
    probe?.close();
    await generator?.stop();
    await target?.close();
    removeDir();
  }
}

// ---- output -----------------------------------------------------------------------------

const HEADER = [
  'target',
  'offered msg/s',
  'sent msg/s',
  'ingested msg/s',
  'lost',
  'drain ms',
  'p50 ms',
  'p99 ms',
  'broker CPU %',
  'loop CPU %',
  'broker µs/msg',
  'loop max ms',
  'loop p99 ms',
  'gen CPU %',
  'peak RSS MB',
];

function formatRow(s: StepResult): string[] {
  return [
    s.target,
    s.rate === 0 ? 'max' : s.share !== null ? `${s.rate} (${s.share}%)` : String(s.rate),
    s.sentRate.toFixed(0),
    s.ingestRate.toFixed(0),
    String(s.lost),
    s.drainMs.toFixed(0),
    s.p50Ms.toFixed(1),
    s.p99Ms.toFixed(1),
    s.brokerCpuPct.toFixed(0),
    s.loopCpuPct.toFixed(0),
    s.brokerUsPerMsg.toFixed(1),
    Number.isNaN(s.loopMaxMs) ? '–' : s.loopMaxMs.toFixed(0),
    Number.isNaN(s.loopP99Ms) ? '–' : s.loopP99Ms.toFixed(0),
    s.generatorCpuPct.toFixed(0),
    s.peakRssMb.toFixed(0),
  ];
}

function table(results: readonly TargetResult[]): string {
  const rows = results.flatMap((r) => r.steps.map(formatRow));
  const widths = HEADER.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(HEADER), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function summary(results: readonly TargetResult[]) {
  const byTarget = Object.fromEntries(
    results.map((r) => {
      const max = r.steps.find((s) => s.rate === 0);
      // Sustained: a stepped rate taken in full (≥ 98% of the offer) with nothing lost.
      const sustained = r.steps.filter((s) => s.rate > 0 && s.lost === 0 && s.ingestRate >= 0.98 * s.rate).map((s) => s.rate);
      const clean = r.steps.filter((s) => s.lost === 0).map((s) => s.ingestRate);
      return [
        r.target,
        {
          maxRate: max ? Math.round(max.ingestRate) : undefined,
          /** The best rate of any step with nothing lost (a noisy machine does not always peak in the max step). */
          bestRate: clean.length > 0 ? Math.round(Math.max(...clean)) : undefined,
          maxP99Ms: max?.p99Ms,
          /** Event-loop delay at the steps offered as a share of the max, ms. */
          loopAtShare: r.steps
            .filter((s) => s.share !== null)
            .map((s) => ({ share: s.share, rate: s.rate, lost: s.lost, loopMaxMs: s.loopMaxMs, loopP99Ms: s.loopP99Ms })),
          highestStepTakenInFull: sustained.length > 0 ? Math.max(...sustained) : 0,
          sent: r.sent,
          stored: r.stored,
          lost: r.sent - r.stored,
          vmHwmMb: Math.round(r.vmHwmMb),
        },
      ];
    }),
  );
  const ratio = (other: TargetName, key: 'maxRate' | 'bestRate') => {
    const hub = byTarget.flotilla?.[key];
    const rate = byTarget[other]?.[key];
    return hub !== undefined && rate ? Number((hub / rate).toFixed(2)) : undefined;
  };
  return {
    byTarget,
    hubMaxVsAedes: ratio('aedes', 'maxRate'),
    hubMaxVsMosquitto: ratio('mosquitto', 'maxRate'),
    hubBestVsAedes: ratio('aedes', 'bestRate'),
    hubBestVsMosquitto: ratio('mosquitto', 'bestRate'),
  };
}

async function main(): Promise<void> {
  const results: TargetResult[] = [];
  const started = performance.now();
  for (const name of SELECTED) {
    if (!args.json) console.error(`${name}: ${DEVICES} devices, window ${WINDOW}, ${RATES.length} steps of ${STEP_MS / 1000} s`);
    results.push(await measure(name));
  }
  const machine = { node: process.version, cpus: cpus().length, loadavg1: Number(loadavg()[0]!.toFixed(2)) };
  const report = {
    ...machine,
    devices: DEVICES,
    window: WINDOW,
    stepS: STEP_MS / 1000,
    wallS: Math.round((performance.now() - started) / 1000),
    summary: summary(results),
    steps: results.flatMap((r) => r.steps),
  };
  if (!args.json) {
    console.log(
      `telemetry-ingest: node ${machine.node}, ${machine.cpus} CPUs, load ${machine.loadavg1}, ${DEVICES} devices × window ${WINDOW}, QoS 1, 90% log batches (1–5 lines) / 10% metrics`,
    );
    console.log(table(results));
  }
  console.log(JSON.stringify(report, null, 2));
}

main().then(
  () => {
    cleanupAll();
    process.exit(0);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    cleanupAll();
    process.exit(1);
  },
);
