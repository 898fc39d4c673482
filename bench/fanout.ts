/**
 * Fan-out at fleet scale: one `POST /api/v1/apps` selecting N devices, and
 * how long until the hub has each device's acknowledgement (a state report
 * with the new revision), with the hub in a process of its own and the
 * devices in others (bench/fanout/devices.ts), so the hub's RSS and CPU are
 * the hub's alone.
 *
 *   npx tsx bench/fanout.ts [--devices 10000] [--sims 1] [--connect-rate 1000] [--runs 1]
 *                           [--hub-roots DIR[,DIR…]] [--settle-s 10] [--verify-every 100]
 *                           [--keepalive-s 30] [--log-level info] [--profile DIR] [--replicas 1] [--timeout-s 180] [--json]
 *
 * Per run: start `flotilla server` (its own temp data dir, loopback, default
 * settings but for connection pacing, which would spread 10,000 connections
 * from one address over minutes), read its RSS at rest, connect the devices
 * at `--connect-rate`/s (each announces itself, the hub issues it a first,
 * empty document, which it acknowledges), let it settle `--settle-s`, read
 * the RSS with N idle devices, then apply one app selecting them all and
 * wait for every acknowledgement.
 *
 * Columns: PUBACK p50/p99/all = s from the POST until that share of devices
 * had the broker's PUBACK for their acknowledging report (the broker has
 * taken it; the dispatcher handles reports in order after that, so these
 * are lower bounds); counted p50/p90/p99/all = until the hub counted that
 * share as running the new revision (GET /api/v1/apps/NAME every
 * `--count-every-ms`, 250 by default, from the last PUBACK on: a poll reads
 * the whole fleet and holds the hub's event loop meanwhile, so none is made
 * while the fan-out runs; upper bounds, the count held by each answer);
 * recv p50/p99 = when the document reached the devices; hub CPU = user +
 * system of the hub process from the POST to the last count, less the
 * polls' (polls × CPU ms, one poll measured alone afterwards), in s and as a
 * share of one core over that wall time; hub loop max = its longest
 * event-loop stall from the POST to the last PUBACK; sim CPU = the simulator processes' CPU over the same span (it
 * competes with the hub for the machine's cores); RSS at rest / with N idle
 * devices and the difference per device. `counted` is what the hub's API
 * says afterwards: devices whose observed revision is their desired one and
 * report the app running.
 *
 * `--hub-roots` runs the hub from other checkouts (a git worktree of an older
 * commit, its node_modules linked) alternately with this one, for old and new
 * figures from one session; the devices are always this checkout's. A root
 * may carry node flags for its hub alone after `#`s (`.#--max-semi-space-size=2`).
 * `--profile DIR` starts each hub with --cpu-prof (the profile is written when
 * it exits); bench/fanout/profile.ts summarises one. `--heap-snapshot DIR`
 * has each hub write a heap snapshot there once the idle fleet's RSS is read
 * (V8 collects garbage first; the hub stalls for seconds meanwhile, before
 * the apply); bench/fanout/heap.ts summarises one.
 *
 * `--aedes` adds, per run, the idle-memory reference: the hub's broker module
 * alone (bench/telemetry/aedes-relay.ts, Aedes with the hub's options and no
 * hooks) with the same devices, each retaining a document of the hub's size
 * on its desired topic itself; no apply (nothing would answer it).
 *
 * `--node-flags "--max-semi-space-size=2 …"` starts the broker processes with
 * these node flags (what the hub's memory costs with other V8 settings);
 * `--clean-session` connects the devices with clean sessions (the agent asks
 * for a persistent one: what the session costs the broker). `--hub-roots none`
 * runs no hub (with --aedes: the reference alone).
 *
 * `--replicas N` (N ≥ 2) runs the hub as N replicas (`--redis … --database …`) on a
 * private Redis and PostgreSQL (test/support/redis.ts, postgres.ts): simulator process i
 * connects its devices to replica i mod N (`--sims` is raised to N at least), the apply is
 * POSTed to the second replica and counted on the first, and CPU, RSS and the per-device memory
 * are the replicas' together (the loop stall is the worst replica's); Redis and PostgreSQL are not
 * counted in them.
 *
 * A second table says where the machine's CPU went over the same span: the hub (or replicas), the
 * simulators, with `--replicas` Redis and the PostgreSQL server (its backends, including those it reaped), and
 * anything else (the machine's busy time from /proc/stat less those: other work on a shared
 * machine takes from the same cores), with the machine's busy share of all its cores.
 *
 * `--smaps DIR` copies each broker's /proc/PID/smaps there at rest and idle
 * (where RSS that is neither V8's heap nor Buffers lives: malloc arenas,
 * SQLite's page cache, code).
 *
 * Memory is read at rest and idle after a full garbage collection, which a
 * probe preloaded into each broker process does when asked (gc-probe.mjs;
 * loop-delay.mjs measures the hub's event-loop stalls during the fan-out).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AppDetail } from '../shared/index.js';
import { startPostgres } from '../test/support/postgres.js';
import { hubServerArgs, ManagedProcess, REPO_ROOT } from '../test/support/processes.js';
import { startRedis } from '../test/support/redis.js';
import type { SimCommand, SimReply } from './fanout/devices.js';
import { machineTicks, postgresServerTicks, redisServerTicks } from './fanout/machine-cpu.js';
import { clockTicksPerSecond, readCpuTicks, readMemory } from './footprint/proc.js';
import { positiveInt } from './int-arg.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    sims: { type: 'string', default: '1' },
    'connect-rate': { type: 'string', default: '1000' },
    runs: { type: 'string', default: '1' },
    'hub-roots': { type: 'string', default: '.' },
    'settle-s': { type: 'string', default: '10' },
    'verify-every': { type: 'string', default: '100' },
    'keepalive-s': { type: 'string', default: '30' },
    'log-level': { type: 'string', default: 'info' },
    profile: { type: 'string' },
    'heap-snapshot': { type: 'string' },
    aedes: { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
    'clean-session': { type: 'boolean', default: false },
    smaps: { type: 'string' },
    replicas: { type: 'string', default: '1' },
    'count-every-ms': { type: 'string', default: '250' },
    'timeout-s': { type: 'string', default: '180' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (args.help) {
  console.log(
    'usage: npx tsx bench/fanout.ts [--devices N] [--sims P] [--connect-rate R] [--runs R] [--hub-roots DIR[,DIR…]] [--settle-s S]\n' +
      '         [--verify-every K] [--keepalive-s S] [--log-level L] [--profile DIR] [--replicas N] [--timeout-s S] [--json]',
  );
  process.exit(0);
}

const DEVICES = positiveInt('devices', args.devices);
const REPLICAS = positiveInt('replicas', args.replicas);
const SIMS = Math.max(positiveInt('sims', args.sims), REPLICAS);
const CONNECT_RATE = positiveInt('connect-rate', args['connect-rate']);
const RUNS = positiveInt('runs', args.runs);
const SETTLE_MS = positiveInt('settle-s', args['settle-s'], 0) * 1000;
const VERIFY_EVERY = positiveInt('verify-every', args['verify-every'], 0);
const KEEPALIVE_S = positiveInt('keepalive-s', args['keepalive-s'], 0);
const TIMEOUT_MS = positiveInt('timeout-s', args['timeout-s']) * 1000;
/** A hub checkout, and node flags for that hub alone after `#`s: `/tmp/old`, `.#--max-semi-space-size=2`. */
interface HubTarget {
  root: string;
  flags: string[];
}
const HUB_ROOTS: HubTarget[] =
  args['hub-roots'] === 'none'
    ? []
    : args['hub-roots'].split(',').map((spec) => {
        const [root = '.', ...flags] = spec.split('#');
        return { root: resolve(root), flags };
      });
const COUNT_EVERY_MS = positiveInt('count-every-ms', args['count-every-ms'], 50);
const NODE_FLAGS = args['node-flags'].split(' ').filter((flag) => flag !== '');
const PROFILE_DIR = args.profile === undefined ? undefined : resolve(args.profile);
const SNAPSHOT_DIR = args['heap-snapshot'] === undefined ? undefined : resolve(args['heap-snapshot']);
const LABELS = { fanout: 'yes' };
/** Preloaded into every broker process: garbage collection and memory on request, and the event loop's delay. */
const PROBES = [
  ...['--import', fileURLToPath(new URL('./fanout/gc-probe.mjs', import.meta.url))],
  ...['--import', fileURLToPath(new URL('./telemetry/loop-delay.mjs', import.meta.url))],
];
const APP = 'fanout';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const wallNow = () => performance.timeOrigin + performance.now();

const cleanups: (() => void)[] = [];
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
    process.exit(130);
  });
}

interface Hub {
  proc: ManagedProcess;
  url: string;
  mqttPort: number;
  pid: number;
}

async function startHub({ root, flags: hubFlags }: HubTarget, dataDir: string, replicaArgs: string[] = []): Promise<Hub> {
  const server = await hubServerArgs(dataDir);
  const flags = ['--max-connect-rate', '0', '--max-connect-rate-per-address', '0', '--log-level', args['log-level'], ...replicaArgs];
  const profile = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : [];
  const snapshot = SNAPSHOT_DIR ? ['--heapsnapshot-signal=SIGUSR2', '--diagnostic-dir', SNAPSHOT_DIR] : [];
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, ...hubFlags, ...profile, ...snapshot, ...PROBES, join(root, 'cli/flotilla.js'), ...server.args, ...flags],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  const proc = new ManagedProcess('hub', child);
  // The hub's log (info: a few lines per device) is read and dropped, not kept: 10,000 devices write megabytes.
  child.stdout?.removeAllListeners('data');
  child.stdout?.on('data', () => {});
  const url = `http://127.0.0.1:${server.httpPort}`;
  const deadline = performance.now() + 30_000;
  for (;;) {
    if (!proc.running) throw new Error(`the hub exited before it was ready: ${proc.output.slice(-2000)}`);
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (performance.now() > deadline) throw new Error('the hub was not ready in 30 s');
    await sleep(100);
  }
  return { proc, url, mqttPort: server.mqttPort, pid: child.pid! };
}

interface ProbeReply {
  type: string;
}

/** Asks a broker's preloaded probe (gc-probe.mjs, loop-delay.mjs) and waits for its answer. */
function ask<T extends ProbeReply>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the broker did not answer ${type} in 30 s`)), 30_000);
    const onMessage = (message: ProbeReply) => {
      if (message?.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(message as T);
    };
    child.on('message', onMessage);
    child.send({ type });
  });
}

interface Memory {
  rssKb: number;
  anonKb: number;
  heapMiB: number;
  externalMiB: number;
}

/** The broker's memory after a full garbage collection: RSS (and its anonymous part) from /proc, V8's used heap and external memory from the process. */
async function liveMemory(child: ChildProcess): Promise<Memory> {
  const { heapUsed, external } = await ask<ProbeReply & { heapUsed: number; external: number }>(child, 'gc-memory');
  const { rssKb, anonKb } = readMemory(child.pid!);
  return { rssKb, anonKb, heapMiB: heapUsed / 1024 / 1024, externalMiB: external / 1024 / 1024 };
}

/** The broker event loop's longest and 99th-percentile delay since the last question, ms. */
function loopDelay(child: ChildProcess): Promise<{ maxMs: number; p99Ms: number }> {
  return ask<ProbeReply & { maxMs: number; p99Ms: number }>(child, 'loop-delay');
}

/** Has the hub write a heap snapshot (SIGUSR2, --heapsnapshot-signal) and waits until the file is complete. */
async function heapSnapshot(hub: Hub, dir: string): Promise<void> {
  const before = new Set(readdirSync(dir));
  hub.proc.child.kill('SIGUSR2');
  let size = -1;
  for (;;) {
    await sleep(1000);
    const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!file) continue;
    const now = statSync(join(dir, file)).size;
    // Written in one go by the hub's main thread: complete once it stops growing and the hub answers again.
    if (
      now === size &&
      (await fetch(`${hub.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      ))
    )
      return;
    size = now;
  }
}

class Simulator {
  private readonly child: ChildProcess = fork(fileURLToPath(new URL('./fanout/devices.ts', import.meta.url)), [], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });

  get pid(): number {
    return this.child.pid!;
  }

  request<T extends SimReply['type']>(cmd: SimCommand, answer: T, timeoutMs = TIMEOUT_MS): Promise<Extract<SimReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the simulator did not answer ${cmd.type} in ${timeoutMs / 1000} s`)), timeoutMs);
      const onMessage = (reply: SimReply) => {
        if (reply.type !== 'error' && reply.type !== answer) return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        if (reply.type === 'error') reject(new Error(reply.message));
        else resolve(reply as Extract<SimReply, { type: T }>);
      };
      this.child.on('message', onMessage);
      this.child.send(cmd);
    });
  }

  tell(cmd: SimCommand): void {
    this.child.send(cmd);
  }

  stop(): void {
    if (this.child.connected) this.child.send({ type: 'stop' } satisfies SimCommand);
    this.child.kill('SIGTERM');
  }
}

/** Memory of the broker process at rest and with the idle fleet connected. */
interface IdleMemory {
  /** The hub's checkout, or "aedes" for the raw-Aedes reference. */
  target: string;
  run: number;
  devices: number;
  connectS: number;
  rssRestMiB: number;
  rssIdleMiB: number;
  idleKiBPerDevice: number;
  anonRestMiB: number;
  anonIdleMiB: number;
  heapRestMiB: number;
  heapIdleMiB: number;
  externalRestMiB: number;
  externalIdleMiB: number;
}

interface FanOut {
  target: string;
  run: number;
  devices: number;
  postMs: number;
  countedP50S: number;
  countedP90S: number;
  countedP99S: number;
  countedAllS: number;
  ackP50S: number;
  ackP90S: number;
  ackP99S: number;
  ackAllS: number;
  recvP50S: number;
  recvP99S: number;
  acked: number;
  counted: number;
  /** Polls of the app's devices during the fan-out, and what one costs the hub (taken out of hubCpuS). */
  polls: number;
  pollCpuMs: number;
  badSignatures: number;
  hubCpuS: number;
  hubCpuPct: number;
  simCpuS: number;
  rssPeakMiB: number;
  /** The hub's longest event-loop stall from the POST to the last PUBACK: what any other client waited at worst. */
  loopMaxMs: number;
  loadavg1: number;
  /** Replicas only: the CPU of Redis and of the PostgreSQL backends over the same span (NaN for one hub). */
  redisCpuS: number;
  postgresCpuS: number;
  /** The whole machine's busy share over the span, all cores, whoever used it (100 % = every core busy). */
  machineBusyPct: number;
  /** The machine's busy CPU over the span less the hub, simulators, Redis and PostgreSQL: everything else running. */
  otherCpuS: number;
}

/** What runs beside the replicas for them: their CPU is read around the fan-out. */
interface ReplicaServices {
  args: string[];
  cpuTicks(): { redis: number; postgres: number };
}

/** The process the devices connect to, with the probes preloaded. */
interface Broker {
  child: ChildProcess;
  mqttPort: number;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
}

/** Reads the broker at rest, connects the fleet (each device in once its first report is taken), lets it settle and reads it again. */
async function idleFleet(
  brokers: readonly Broker[],
  target: string,
  run: number,
  sims: Simulator[],
  options: { hubKeyPem: string; verifyEvery: number; noHub: boolean },
): Promise<IdleMemory> {
  await sleep(Math.min(SETTLE_MS, 5000));
  const rest = await brokersMemory(brokers);
  saveSmaps(brokers, `${target.replaceAll('/', '_')}-${run}-rest`);
  const width = String(DEVICES - 1).length;
  const ids = Array.from({ length: DEVICES }, (_, i) => `fan-${String(i).padStart(width, '0')}`);
  const connectStart = performance.now();
  const starts: Promise<unknown>[] = [];
  for (let s = 0; s < SIMS; s++) {
    const sim = new Simulator();
    sims.push(sim);
    const share = ids.filter((_, i) => i % SIMS === s);
    const start: SimCommand = {
      type: 'start',
      host: '127.0.0.1',
      port: brokers[s % brokers.length]!.mqttPort,
      ids: share,
      connectRate: CONNECT_RATE / SIMS,
      keepaliveSeconds: KEEPALIVE_S,
      persistent: !args['clean-session'],
      labels: LABELS,
      ...options,
    };
    starts.push(sim.request(start, 'ready'));
  }
  await Promise.all(starts);
  const connectS = (performance.now() - connectStart) / 1000;
  if (!args.json) console.error(`run ${run} (${target}): ${DEVICES} devices in in ${connectS.toFixed(1)} s`);
  await sleep(SETTLE_MS);
  const idle = await brokersMemory(brokers);
  saveSmaps(brokers, `${target.replaceAll('/', '_')}-${run}-idle`);
  return {
    target,
    run,
    devices: DEVICES,
    connectS,
    rssRestMiB: rest.rssKb / 1024,
    rssIdleMiB: idle.rssKb / 1024,
    idleKiBPerDevice: (idle.rssKb - rest.rssKb) / DEVICES,
    anonRestMiB: rest.anonKb / 1024,
    anonIdleMiB: idle.anonKb / 1024,
    heapRestMiB: rest.heapMiB,
    heapIdleMiB: idle.heapMiB,
    externalRestMiB: rest.externalMiB,
    externalIdleMiB: idle.externalMiB,
  };
}

/** The brokers' memory together (replicas of one hub: their sum). */
async function brokersMemory(brokers: readonly Broker[]): Promise<Memory> {
  const each = await Promise.all(brokers.map((broker) => liveMemory(broker.child)));
  return {
    rssKb: each.reduce((sum, m) => sum + m.rssKb, 0),
    anonKb: each.reduce((sum, m) => sum + m.anonKb, 0),
    heapMiB: each.reduce((sum, m) => sum + m.heapMiB, 0),
    externalMiB: each.reduce((sum, m) => sum + m.externalMiB, 0),
  };
}

function saveSmaps(brokers: readonly Broker[], name: string): void {
  if (args.smaps === undefined) return;
  mkdirSync(args.smaps, { recursive: true });
  // Read, not copied: a /proc file's size is 0 to copyFile.
  for (const [i, broker] of brokers.entries()) {
    const suffix = brokers.length > 1 ? `-replica${i}` : '';
    writeFileSync(join(args.smaps, `${name}${suffix}.smaps`), readFileSync(`/proc/${broker.child.pid!}/smaps`));
  }
}

/** The raw-Aedes reference: idle memory only. */
async function measureAedes(run: number): Promise<IdleMemory> {
  const child = fork(fileURLToPath(new URL('./telemetry/aedes-relay.ts', import.meta.url)), ['0'], {
    execArgv: [...NODE_FLAGS, ...PROBES, '--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const sims: Simulator[] = [];
  const cleanup = () => {
    for (const sim of sims) sim.stop();
    child.kill('SIGKILL');
  };
  cleanups.push(cleanup);
  try {
    const mqttPort = await new Promise<number>((resolve) => {
      const onReady = (m: { type?: string; mqttPort: number }) => {
        if (m?.type !== 'ready') return;
        child.off('message', onReady);
        resolve(m.mqttPort);
      };
      child.on('message', onReady);
    });
    const broker: Broker = { child, mqttPort };
    // Nobody signs the stand-in documents: nothing to verify.
    const { publicKey } = generateKeyPairSync('ed25519');
    const hubKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    return await idleFleet([broker], 'aedes', run, sims, { hubKeyPem, verifyEvery: 0, noHub: true });
  } finally {
    cleanup();
    cleanups.splice(cleanups.indexOf(cleanup), 1);
  }
}

async function measureHub(hubRoot: HubTarget, run: number): Promise<{ idle: IdleMemory; fanOut: FanOut }> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-fanout-'));
  const sims: Simulator[] = [];
  const hubs: Hub[] = [];
  const services: { close(): Promise<void> }[] = [];
  const cleanup = () => {
    for (const sim of sims) sim.stop();
    for (const hub of hubs) hub.proc.child.kill('SIGKILL');
    for (const service of services) void service.close();
    rmSync(dir, { recursive: true, force: true });
  };
  cleanups.push(cleanup);
  try {
    const replicas = REPLICAS > 1 ? await replicaServices(dir, services) : undefined;
    // One after another: the first makes the signing key the others use.
    for (let i = 0; i < REPLICAS; i++) hubs.push(await startHub(hubRoot, join(dir, `hub-${i}`), replicas?.args));
    const { hubKey } = (await (await fetch(`${hubs[0]!.url}/api/v1/hub/key`)).json()) as { hubKey: string };
    const brokers = hubs.map((hub): Broker => ({ child: hub.proc.child, mqttPort: hub.mqttPort }));
    const target = REPLICAS > 1 ? `${label(hubRoot)} ×${REPLICAS} replicas` : label(hubRoot);
    const idle = await idleFleet(brokers, target, run, sims, { hubKeyPem: hubKey, verifyEvery: VERIFY_EVERY, noHub: false });
    if (SNAPSHOT_DIR) {
      mkdirSync(SNAPSHOT_DIR, { recursive: true });
      for (const hub of hubs) await heapSnapshot(hub, SNAPSHOT_DIR);
    }
    return { idle, fanOut: await fanOut(hubs, target, run, sims, idle.rssIdleMiB * 1024, replicas) };
  } finally {
    for (const sim of sims) sim.stop();
    // SIGTERM: a graceful stop, so a --cpu-prof hub writes its profile.
    for (const hub of hubs) await hub.proc.stop();
    for (const service of services) await service.close();
    rmSync(dir, { recursive: true, force: true });
    cleanups.splice(cleanups.indexOf(cleanup), 1);
  }
}

/** A private Redis and PostgreSQL for the replicas (closed by the caller); the flags that make a hub one of them. */
async function replicaServices(dir: string, services: { close(): Promise<void> }[]): Promise<ReplicaServices> {
  const redis = await startRedis();
  services.push(redis);
  const postgres = await startPostgres();
  services.push(postgres);
  const database = await postgres.createDatabase('fanout');
  return {
    args: ['--redis', redis.url, '--database', database, '--secrets-key-file', join(dir, 'secrets.key')],
    cpuTicks: () => ({ redis: redisServerTicks(redis.url), postgres: postgresServerTicks(database) }),
  };
}

/** Applies one app selecting the whole fleet and waits for every device's acknowledgement (or the timeout). */
async function fanOut(
  hubs: readonly Hub[],
  target: string,
  run: number,
  sims: readonly Simulator[],
  idleRssKb: number,
  replicas?: ReplicaServices,
): Promise<FanOut> {
  // The apply goes through another replica than the one counting, as a load balancer would send them.
  const [counter, applier = counter] = hubs as [Hub, Hub?];
  const hubCpuTicks = () => hubs.reduce((sum, hub) => sum + readCpuTicks(hub.pid), 0);
  for (const sim of sims) sim.tell({ type: 'watch', app: APP });
  // The watch is a message away: a round trip through each simulator makes sure it is armed.
  await Promise.all(sims.map((sim) => sim.request({ type: 'report' }, 'report')));
  let rssPeak = idleRssKb;
  const sampler = setInterval(() => {
    rssPeak = Math.max(
      rssPeak,
      hubs.reduce((sum, hub) => sum + readMemory(hub.pid).rssKb, 0),
    );
  }, 200);
  const simCpu0 = await simCpu(sims);
  await Promise.all(hubs.map((hub) => loopDelay(hub.proc.child)));
  const hubTicks0 = hubCpuTicks();
  const services0 = replicas?.cpuTicks();
  const machine0 = machineTicks();
  const applyAt = wallNow();
  const spec = {
    name: APP,
    scheduling: { selectors: LABELS },
    spec: { containers: [{ name: 'app', image: `registry.local/fanout:${run}` }], update: { minReadySeconds: 0 } },
  };
  const res = await fetch(`${applier.url}/api/v1/apps`, {
    method: 'POST',
    body: JSON.stringify(spec),
    headers: { 'content-type': 'application/json' },
  });
  const postMs = wallNow() - applyAt;
  if (!res.ok) throw new Error(`POST /api/v1/apps: HTTP ${res.status} ${await res.text()}`);

  // Until every device has the broker's PUBACK for its acknowledgement: the simulators only
  // read their arrays, so the hub's event loop during this span is the fan-out's alone.
  const deadline = performance.now() + TIMEOUT_MS;
  for (;;) {
    const reports = await Promise.all(sims.map((sim) => sim.request({ type: 'report' }, 'report')));
    if (reports.every((r) => r.ackedAt.every((t) => t > 0)) || performance.now() > deadline) break;
    await sleep(100);
  }
  const loop = { maxMs: Math.max(...(await Promise.all(hubs.map((hub) => loopDelay(hub.proc.child)))).map((l) => l.maxMs)) };
  // Then until the hub counts every device (or the timeout). A poll reads the whole fleet and holds the
  // hub's event loop while it does (~0.3 s for 10,000 devices here), so polling starts only now: the
  // counted figures are upper bounds (the count held by the answer), the PUBACK ones lower bounds.
  const countedAt: number[] = [];
  let polls = 0;
  let counted = 0;
  let hubTicks1: number;
  let services1: ReturnType<ReplicaServices['cpuTicks']> | undefined;
  let machine1: ReturnType<typeof machineTicks>;
  for (;;) {
    const detail = (await (await fetch(`${counter.url}/api/v1/apps/${APP}`)).json()) as AppDetail;
    const answeredAt = wallNow();
    polls++;
    counted = detail.devices.filter((d) => d.revision === detail.revision && d.phase === 'running').length;
    while (countedAt.length < counted) countedAt.push((answeredAt - applyAt) / 1000);
    if (counted === DEVICES || performance.now() > deadline) {
      hubTicks1 = hubCpuTicks();
      services1 = replicas?.cpuTicks();
      machine1 = machineTicks();
      break;
    }
    await sleep(COUNT_EVERY_MS);
  }
  const reports = await Promise.all(sims.map((sim) => sim.request({ type: 'report' }, 'report')));
  clearInterval(sampler);
  // What one poll costs the hub, with nothing else going on: the median of three.
  const pollTicks: number[] = [];
  for (let i = 0; i < 3; i++) {
    const ticks = hubCpuTicks();
    await (await fetch(`${counter.url}/api/v1/apps/${APP}`)).json();
    pollTicks.push(hubCpuTicks() - ticks);
  }
  const pollCpuS = pollTicks.sort((a, b) => a - b)[1]! / clockTicksPerSecond();
  const acks = reports.flatMap((r) => r.ackedAt.filter((t) => t > 0).map((t) => (t - applyAt) / 1000)).sort((a, b) => a - b);
  const recvs = reports.flatMap((r) => r.receivedAt.filter((t) => t > 0).map((t) => (t - applyAt) / 1000)).sort((a, b) => a - b);
  const spanS = countedAt.at(-1) ?? Number.NaN;
  const simCpuS = (reports.reduce((sum, r) => sum + r.cpuMs, 0) - simCpu0) / 1000;
  const hubCpuS = (hubTicks1 - hubTicks0) / clockTicksPerSecond() - polls * pollCpuS;
  const tick = clockTicksPerSecond();
  const redisCpuS = services0 && services1 ? (services1.redis - services0.redis) / tick : Number.NaN;
  const postgresCpuS = services0 && services1 ? (services1.postgres - services0.postgres) / tick : Number.NaN;
  const machineBusyS = (machine1.busy - machine0.busy) / tick;
  // The polls are the hub's too here: the machine's busy time includes them.
  const ours = hubCpuS + polls * pollCpuS + simCpuS + (services0 ? redisCpuS + postgresCpuS : 0);

  // Shares of the whole fleet, not of those that acknowledged: a device that never did is past every quantile.
  const ackQuantile = (q: number) => acks[Math.ceil(q * DEVICES) - 1] ?? Number.NaN;
  const countedQuantile = (q: number) => countedAt[Math.ceil(q * DEVICES) - 1] ?? Number.NaN;
  return {
    target,
    run,
    devices: DEVICES,
    postMs,
    countedP50S: countedQuantile(0.5),
    countedP90S: countedQuantile(0.9),
    countedP99S: countedQuantile(0.99),
    countedAllS: countedQuantile(1),
    ackP50S: ackQuantile(0.5),
    ackP90S: ackQuantile(0.9),
    ackP99S: ackQuantile(0.99),
    ackAllS: ackQuantile(1),
    recvP50S: quantile(recvs, 0.5),
    recvP99S: quantile(recvs, 0.99),
    acked: acks.length,
    counted,
    polls,
    pollCpuMs: pollCpuS * 1000,
    badSignatures: reports.reduce((n, r) => n + r.badSignatures, 0),
    hubCpuS,
    hubCpuPct: (hubCpuS / spanS) * 100,
    simCpuS,
    rssPeakMiB: rssPeak / 1024,
    loopMaxMs: loop.maxMs,
    loadavg1: loadavg()[0]!,
    redisCpuS,
    postgresCpuS,
    machineBusyPct: ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * 100,
    otherCpuS: machineBusyS - ours,
  };
}

async function simCpu(sims: readonly Simulator[]): Promise<number> {
  const reports = await Promise.all(sims.map((sim) => sim.request({ type: 'report' }, 'report')));
  return reports.reduce((sum, r) => sum + r.cpuMs, 0);
}

function label({ root, flags }: HubTarget): string {
  return [root === REPO_ROOT ? 'this checkout' : root, ...flags].join(' ');
}

async function main(): Promise<void> {
  const idles: IdleMemory[] = [];
  const fanOuts: FanOut[] = [];
  for (let run = 1; run <= RUNS; run++) {
    if (args.aedes) idles.push(await measureAedes(run));
    for (const root of HUB_ROOTS) {
      const { idle, fanOut } = await measureHub(root, run);
      idles.push(idle);
      fanOuts.push(fanOut);
    }
  }
  const report = { node: process.version, cpus: cpus().length, devices: DEVICES, sims: SIMS, connectRate: CONNECT_RATE, fanOuts, idles };
  if (args.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const s = (v: number) => (Number.isNaN(v) ? '–' : v.toFixed(2));
  console.log(
    `fanout: node ${process.version}, ${report.cpus} CPUs, ${DEVICES} devices in ${SIMS} simulator process(es), connect ${CONNECT_RATE}/s`,
  );
  console.log(
    '| hub | run | counted p50 / p90 / p99 / all s | PUBACK p50 / p99 / all s | recv p50 / p99 s | POST ms | acked / counted | hub CPU s (% of a core) | polls × CPU ms | sim CPU s | hub loop max ms | RSS peak MiB | load |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of fanOuts) {
    const bad = r.badSignatures > 0 ? ` (${r.badSignatures} bad signatures)` : '';
    console.log(
      `| ${r.target} | ${r.run} | ${s(r.countedP50S)} / ${s(r.countedP90S)} / ${s(r.countedP99S)} / ${s(r.countedAllS)} | ${s(r.ackP50S)} / ${s(r.ackP99S)} / ${s(r.ackAllS)} | ${s(r.recvP50S)} / ${s(r.recvP99S)} | ${r.postMs.toFixed(0)} | ${r.acked} / ${r.counted}${bad} | ${r.hubCpuS.toFixed(1)} (${r.hubCpuPct.toFixed(0)} %) | ${r.polls} × ${r.pollCpuMs.toFixed(0)} | ${r.simCpuS.toFixed(1)} | ${r.loopMaxMs.toFixed(0)} | ${r.rssPeakMiB.toFixed(1)} | ${r.loadavg1.toFixed(2)} |`,
    );
  }
  console.log('\nCPU from the POST to the last count, s (machine: the busy share of all its cores, whoever used it):');
  console.log('| hub | run | replicas (polls left out) | simulators | Redis | PostgreSQL | anything else | machine busy |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of fanOuts) {
    console.log(
      `| ${r.target} | ${r.run} | ${r.hubCpuS.toFixed(1)} | ${r.simCpuS.toFixed(1)} | ${s(r.redisCpuS)} | ${s(r.postgresCpuS)} | ${r.otherCpuS.toFixed(1)} | ${r.machineBusyPct.toFixed(0)} % |`,
    );
  }
  console.log(`\nbroker process at rest → with ${DEVICES} idle devices, MiB (KiB per device):`);
  console.log('| broker | run | connect s | RSS | anonymous RSS | V8 heap used | external (Buffers) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of idles) {
    const d = (rest: number, idle: number) =>
      Number.isNaN(rest) ? '–' : `${rest.toFixed(1)} → ${idle.toFixed(1)} (${(((idle - rest) * 1024) / r.devices).toFixed(1)})`;
    console.log(
      `| ${r.target} | ${r.run} | ${r.connectS.toFixed(1)} | ${d(r.rssRestMiB, r.rssIdleMiB)} | ${d(r.anonRestMiB, r.anonIdleMiB)} | ${d(r.heapRestMiB, r.heapIdleMiB)} | ${d(r.externalRestMiB, r.externalIdleMiB)} |`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
    process.exit(1);
  },
);
