/**
 * The agent's own image download (docs/image-downloads.md) against the
 * engine's pull of the same image, on a real hub and agent process, the real
 * Docker Engine and the loopback registry, in one run:
 *
 *   flock /tmp/flotilla-e2e.lock npx tsx bench/image-download.ts [--runs 3] [--only loopback,rate,cuts,drops]
 *     [--drop-every-s 30] [--link-rate 256k] [--engine-timeout-s 600] [--json]
 *
 * The image is test/e2e/support/big-image.ts's `big` (five layers, about 50 MB
 * compressed), named through a proxy in front of the registry
 * (test/support/registry-proxy.ts) that counts the blob bytes it sends. Each
 * run starts from an engine without the image and a fresh agent data dir.
 *
 * - loopback: `flotilla apply` of an app with the image → `docker image
 *   inspect` finds it, with the agent's own download, and with the same
 *   agent asking the engine (`spec.update.pull: engine`); `docker pull` alone
 *   for scale. The agent's RSS (VmRSS every 100 ms) before and at its peak.
 *   Median of `--runs`.
 * - rate: `--downlink-rate 256k` and `1m`: the pace at which the first data
 *   layer's partial file grows in the agent's content store, over the middle
 *   of the layer, against the cap.
 * - cuts: the proxy cuts every blob body after 2 MB. Bytes sent and time; the
 *   engine's `docker pull` is run again after each failure (as the agent's
 *   reconciler retries a pull) for at most `--engine-timeout-s`.
 * - drops: a link that drops every `--drop-every-s` (test/support/fault-proxy.ts
 *   resetting every connection) in front of a `--link-rate` thin link
 *   (test/support/thin-link.ts): time and bytes that crossed the link to
 *   deliver the image, the agent's download against `docker pull`, each
 *   through the same link.
 *
 * Loopback only. The process exits by itself; Ctrl-C stops what it started.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import { stringify } from 'yaml';
import { type BigImage, ensureBigImage, referenceVia, removeFromEngine } from '../test/e2e/support/big-image.js';
import { type FaultProxy, startFaultProxy } from '../test/support/fault-proxy.js';
import {
  type AgentProcess,
  type HubProcess,
  runCli,
  scratchDir,
  startAgentProcess,
  startHubProcess,
  stopAll,
} from '../test/support/processes.js';
import { type RegistryProxy, startRegistryProxy } from '../test/support/registry-proxy.js';
import { startThinLink, type ThinLink, type ThinLinkRoute } from '../test/support/thin-link.js';
import { positiveInt } from './int-arg.js';
import { releasesOnExit } from './releases.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const MB = 1_000_000;

const SCENARIOS = ['loopback', 'rate', 'cuts', 'drops'] as const;
type Scenario = (typeof SCENARIOS)[number];

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    only: { type: 'string', default: SCENARIOS.join(',') },
    'drop-every-s': { type: 'string', default: '30' },
    'link-rate': { type: 'string', default: '256k' },
    'engine-timeout-s': { type: 'string', default: '600' },
    json: { type: 'boolean', default: false },
  },
});
const runs = positiveInt('runs', values.runs);
const dropEveryMs = positiveInt('drop-every-s', values['drop-every-s']) * 1000;
const engineTimeoutMs = positiveInt('engine-timeout-s', values['engine-timeout-s'], 10) * 1000;
const linkRate = parseRate('link-rate', values['link-rate']);
const only = values.only.split(',').map((s) => s.trim()) as Scenario[];
for (const scenario of only) {
  if (!SCENARIOS.includes(scenario)) {
    console.error(`--only takes ${SCENARIOS.join(', ')} (got ${scenario})`);
    process.exit(2);
  }
}

const exec = promisify(execFile);
/** Between a failed `docker pull` and the next, as a retrying caller would wait. */
const PULL_RETRY_MS = 2_000;
const say = (text: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${text}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const releases = releasesOnExit(say);
const runId = Date.now().toString(36);
let deviceCount = 0;

function parseRate(name: string, text: string): number {
  const m = /^(\d+)([km]?)$/i.exec(text);
  if (!m) {
    console.error(`--${name} takes bytes per second like 256k or 1m (got ${text})`);
    process.exit(2);
  }
  return Number(m[1]) * ({ '': 1, k: KiB, m: MiB }[m[2]!.toLowerCase()] ?? 1);
}

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await exec('docker', args, { timeout: engineTimeoutMs + 30_000, maxBuffer: 16 * MiB });
  return stdout.trim();
}

async function inEngine(reference: string): Promise<boolean> {
  return docker('image', 'inspect', '--format', '{{.Id}}', reference).then(
    () => true,
    () => false,
  );
}

function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : 0;
  } catch {
    return 0;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

// ---------------------------------------------------------------------------
// One device: a fresh agent on a fresh data dir, an app of one container with the image.

interface Device {
  id: string;
  agent: AgentProcess;
  app: string;
}

async function startDevice(hub: HubProcess, agentArgs: string[]): Promise<Device> {
  deviceCount += 1;
  const id = `bench-dl-${runId}-${deviceCount}`;
  const agent = startAgentProcess(hub, id, {}, { namePrefix: `${id}.`, extraArgs: agentArgs });
  for (const deadline = Date.now() + 30_000; ; ) {
    const shown = await runCli(['--hub', hub.url, 'describe', 'device', id, '-o', 'json']);
    if (shown.code === 0 && (JSON.parse(shown.stdout) as { online: boolean }).online) break;
    if (Date.now() > deadline) throw new Error(`agent ${id} did not come online: ${agent.proc.output.slice(-2000)}`);
    await sleep(200);
  }
  return { id, agent, app: id };
}

async function apply(hub: HubProcess, device: Device, reference: string, pull: 'agent' | 'engine' = 'agent'): Promise<void> {
  const file = join(scratchDir('bench-dl-'), 'app.yaml');
  // The container only has to exist: the measure ends when the engine holds the image.
  const spec = {
    name: device.app,
    scheduling: { devices: [device.id] },
    spec: { containers: [{ name: 'main', image: reference }], update: { pull } },
  };
  writeFileSync(file, stringify(spec));
  const applied = await runCli(['--hub', hub.url, 'apply', '-f', file]);
  if (applied.code !== 0) throw new Error(`apply: ${applied.stderr}`);
}

async function stopDevice(device: Device): Promise<void> {
  await device.agent.proc.stop();
  const ids = await docker('ps', '-aq', '--filter', `label=flotilla.app=${device.app}`);
  if (ids !== '') await docker('rm', '-f', ...ids.split('\n'));
}

interface AgentRun {
  seconds: number;
  idleRssMiB: number;
  peakRssMiB: number;
}

/** Applies the app and waits until the engine holds its image; the agent's RSS sampled meanwhile. */
async function agentDelivers(
  hub: HubProcess,
  device: Device,
  reference: string,
  { timeoutMs = 600_000, pull = 'agent' as 'agent' | 'engine' } = {},
): Promise<AgentRun> {
  const pid = device.agent.proc.child.pid;
  const idleRssMiB = rssMiB(pid);
  let peakRssMiB = idleRssMiB;
  const sampler = setInterval(() => {
    peakRssMiB = Math.max(peakRssMiB, rssMiB(pid));
  }, 100);
  try {
    const started = performance.now();
    await apply(hub, device, reference, pull);
    while (!(await inEngine(reference))) {
      if (performance.now() - started > timeoutMs) throw new Error(`the agent did not deliver ${reference} in ${timeoutMs / 1000} s`);
      await sleep(100);
    }
    return { seconds: (performance.now() - started) / 1000, idleRssMiB, peakRssMiB };
  } finally {
    clearInterval(sampler);
  }
}

interface EngineRun {
  seconds: number;
  finished: boolean;
  /** `docker pull` commands run: a failed pull is run again, as the agent's reconciler would, until --engine-timeout-s. */
  pulls: number;
  /** Why the last pull failed. */
  error?: string;
}

async function enginePulls(reference: string): Promise<EngineRun> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  let pulls = 0;
  let error: string | undefined;
  while (elapsed() < engineTimeoutMs) {
    pulls += 1;
    try {
      // execFile takes whole milliseconds only.
      await exec('docker', ['pull', '-q', reference], { timeout: Math.max(1_000, Math.ceil(engineTimeoutMs - elapsed())) });
      return { seconds: elapsed() / 1000, finished: true, pulls };
    } catch (err) {
      const e = err as Error & { stderr?: string; killed?: boolean };
      error = e.killed ? `still pulling after ${engineTimeoutMs / 1000} s` : (e.stderr ?? e.message).trim().split('\n').pop();
      await sleep(PULL_RETRY_MS);
    }
  }
  return { seconds: elapsed() / 1000, finished: false, pulls, ...(error ? { error } : {}) };
}

// ---------------------------------------------------------------------------
// Scenarios.

async function loopback(hub: HubProcess, image: BigImage, proxy: RegistryProxy) {
  const reference = proxy.via(image.image);
  type Run = AgentRun & { bytes: number };
  const own: Run[] = [];
  const enginePath: Run[] = [];
  const dockerPull: (EngineRun & { bytes: number })[] = [];
  /** A fresh agent, the app applied with `pull`: the image fetched by the agent, or by the engine it asks. */
  const byAgent = async (pull: 'agent' | 'engine'): Promise<Run> => {
    await removeFromEngine(image);
    const device = await startDevice(hub, []);
    proxy.resetCounts();
    const got = await agentDelivers(hub, device, reference, { pull });
    await stopDevice(device);
    return { ...got, bytes: proxy.blobBytes };
  };
  for (let run = 1; run <= runs; run++) {
    own.push(await byAgent('agent'));
    enginePath.push(await byAgent('engine'));
    await removeFromEngine(image);
    proxy.resetCounts();
    const pulled = { ...(await enginePulls(reference)), bytes: proxy.blobBytes };
    if (!pulled.finished) throw new Error(`docker pull of ${reference} on loopback failed: ${pulled.error}`);
    dockerPull.push(pulled);
    const [a, e] = [own.at(-1)!, enginePath.at(-1)!];
    say(
      `loopback run ${run}: agent ${a.seconds.toFixed(1)} s (RSS ${a.idleRssMiB.toFixed(0)} → ${a.peakRssMiB.toFixed(0)} MiB), ` +
        `pull: engine ${e.seconds.toFixed(1)} s (RSS ${e.idleRssMiB.toFixed(0)} → ${e.peakRssMiB.toFixed(0)} MiB), docker pull ${pulled.seconds.toFixed(1)} s`,
    );
  }
  await removeFromEngine(image);
  const seconds = (list: { seconds: number }[]) => median(list.map((r) => r.seconds));
  return {
    agentSeconds: seconds(own),
    engineSeconds: seconds(enginePath),
    dockerPullSeconds: seconds(dockerPull),
    ratio: seconds(own) / seconds(enginePath),
    agentIdleRssMiB: median(own.map((r) => r.idleRssMiB)),
    agentPeakRssMiB: median(own.map((r) => r.peakRssMiB)),
    enginePathPeakRssMiB: median(enginePath.map((r) => r.peakRssMiB)),
    agentMB: median(own.map((r) => r.bytes)) / MB,
    engineMB: median(enginePath.map((r) => r.bytes)) / MB,
    runs: { agent: own, enginePath, dockerPull },
  };
}

/** The pace of the first data layer's partial file in the content store, over its middle, with `--downlink-rate cap`. */
async function rate(hub: HubProcess, image: BigImage, proxy: RegistryProxy, cap: number, flag: string) {
  await removeFromEngine(image);
  const device = await startDevice(hub, ['--downlink-rate', flag]);
  const layer = image.layers[1]!;
  const partial = join(device.agent.dataDir, 'images', 'partial', layer.digest.replace(':', '-'));
  const samples: { at: number; stored: number }[] = [];
  const sampler = setInterval(() => {
    if (existsSync(partial)) samples.push({ at: performance.now(), stored: statSync(partial).size });
  }, 100);
  try {
    await apply(hub, device, proxy.via(image.image));
    // Until the layer is done: its partial file has been seen, then is gone.
    for (let deadline = performance.now() + 600_000; !(samples.length > 0 && !existsSync(partial)); ) {
      if (performance.now() > deadline) throw new Error('the first data layer did not finish in 10 minutes');
      await sleep(200);
    }
  } finally {
    clearInterval(sampler);
    await stopDevice(device);
    await removeFromEngine(image);
  }
  const middle = samples.filter((s) => s.stored >= layer.size / 10 && s.stored <= layer.size - layer.size / 10);
  const first = middle[0]!;
  const last = middle.at(-1)!;
  const measured = (last.stored - first.stored) / ((last.at - first.at) / 1000);
  say(`rate ${flag}: ${(measured / KiB).toFixed(1)} KiB/s over ${((last.at - first.at) / 1000).toFixed(1)} s`);
  return { cap, measured, ratio: measured / cap, seconds: (last.at - first.at) / 1000 };
}

async function cuts(hub: HubProcess, image: BigImage, proxy: RegistryProxy) {
  const reference = proxy.via(image.image);
  proxy.cutEvery(2 * MB);
  try {
    await removeFromEngine(image);
    const device = await startDevice(hub, []);
    proxy.resetCounts();
    const agent = { ...(await agentDelivers(hub, device, reference)), bytes: proxy.blobBytes, cuts: cutCount(proxy) };
    await stopDevice(device);
    await removeFromEngine(image);
    say(`cuts: agent ${agent.seconds.toFixed(1)} s, ${(agent.bytes / MB).toFixed(1)} MB`);
    proxy.resetCounts();
    const engine = { ...(await enginePulls(reference)), bytes: proxy.blobBytes, cuts: cutCount(proxy) };
    await removeFromEngine(image);
    say(`cuts: engine ${outcome(engine)} after ${engine.seconds.toFixed(1)} s, ${(engine.bytes / MB).toFixed(1)} MB`);
    return { imageMB: image.layerBytes / MB, agent, engine };
  } finally {
    proxy.cutEvery(undefined);
  }
}

function cutCount(proxy: RegistryProxy): number {
  return proxy.deliveries.filter((d) => d.end === 'cut').length;
}

/** The engine's pull and the agent's download through: fault proxy (drops every dropEveryMs) → thin link → registry proxy. */
async function drops(hub: HubProcess, image: BigImage, proxy: RegistryProxy) {
  const link: ThinLink = startThinLink({ downBytesPerSecond: linkRate });
  releases.push({ what: 'thin link', run: () => link.close() });
  const route: ThinLinkRoute = await link.route(proxy.port);
  const drop: FaultProxy = await startFaultProxy({ targetPort: route.port });
  releases.push({ what: 'fault proxy', run: () => drop.close() });
  const reference = referenceVia(image, `127.0.0.1:${drop.port}`);

  const through = async <T extends { seconds: number }>(deliver: () => Promise<T>) => {
    await removeFromEngine(image);
    proxy.resetCounts();
    const crossedBefore = route.stats.bytesDown;
    const cutsBefore = drop.stats.cuts;
    const stop = drop.flap({ minMs: dropEveryMs, maxMs: dropEveryMs });
    try {
      const got = await deliver();
      return { ...got, linkMB: (route.stats.bytesDown - crossedBefore) / MB, drops: drop.stats.cuts - cutsBefore };
    } finally {
      stop();
    }
  };

  const device = await startDevice(hub, []);
  const agent = await through(() => agentDelivers(hub, device, reference, { timeoutMs: 30 * 60_000 }));
  await stopDevice(device);
  say(`drops: agent ${agent.seconds.toFixed(1)} s, ${agent.linkMB.toFixed(1)} MB over the link, ${agent.drops} drops`);
  const engine = await through(() => enginePulls(reference));
  await removeFromEngine(image);
  say(`drops: engine ${outcome(engine)} after ${engine.seconds.toFixed(1)} s, ${engine.linkMB.toFixed(1)} MB, ${engine.drops} drops`);
  return { imageMB: image.layerBytes / MB, linkKiBps: linkRate / KiB, dropEveryS: dropEveryMs / 1000, agent, engine };
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  releases.push({ what: 'processes and temp dirs', run: () => stopAll() });
  say('preparing the image (pushed once per recipe)');
  const image = await ensureBigImage('bench', 'big');
  releases.push({ what: 'the image in the engine', run: () => removeFromEngine(image) });
  const hub = await startHubProcess();
  const proxy = await startRegistryProxy();
  releases.push({ what: 'registry proxy', run: () => proxy.close() });
  say(`image ${image.image}: ${image.layers.length} layers, ${(image.layerBytes / MB).toFixed(1)} MB compressed`);

  const results: Record<string, unknown> = { imageMB: image.layerBytes / MB, layers: image.layers.length };
  if (only.includes('loopback')) results.loopback = await loopback(hub, image, proxy);
  if (only.includes('rate')) {
    results.rate = [await rate(hub, image, proxy, 256 * KiB, '256k'), await rate(hub, image, proxy, MiB, '1m')];
  }
  if (only.includes('cuts')) results.cuts = await cuts(hub, image, proxy);
  if (only.includes('drops')) results.drops = await drops(hub, image, proxy);

  if (values.json) console.log(JSON.stringify(results, null, 2));
  else printTable(results);
}

function outcome(run: EngineRun): string {
  const pulls = `${run.pulls} docker pull${run.pulls === 1 ? '' : 's'}`;
  return run.finished ? `delivered by ${pulls}` : `not delivered by ${pulls} (the last: ${run.error ?? 'failed'})`;
}

function printTable(results: Record<string, unknown>): void {
  const r = results as {
    loopback?: Awaited<ReturnType<typeof loopback>>;
    rate?: Awaited<ReturnType<typeof rate>>[];
    cuts?: Awaited<ReturnType<typeof cuts>>;
    drops?: Awaited<ReturnType<typeof drops>>;
  };
  const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
  if (r.loopback) {
    const l = r.loopback;
    console.log(
      `loopback (median of ${runs}), apply → image in the engine: agent's download ${l.agentSeconds.toFixed(1)} s, ` +
        `pull: engine ${l.engineSeconds.toFixed(1)} s (${l.ratio.toFixed(2)}×); docker pull alone ${l.dockerPullSeconds.toFixed(1)} s`,
    );
    console.log(
      `  agent RSS ${l.agentIdleRssMiB.toFixed(0)} MiB before, ${l.agentPeakRssMiB.toFixed(0)} MiB at its peak ` +
        `(${l.enginePathPeakRssMiB.toFixed(0)} MiB with pull: engine); blob bytes sent: ${l.agentMB.toFixed(1)} MB, ${l.engineMB.toFixed(1)} MB`,
    );
  }
  for (const x of r.rate ?? []) {
    console.log(
      `rate cap ${(x.cap / KiB).toFixed(0)} KiB/s: measured ${(x.measured / KiB).toFixed(1)} KiB/s over ${x.seconds.toFixed(1)} s (${x.ratio.toFixed(3)} of the cap)`,
    );
  }
  if (r.cuts) {
    const { agent, engine, imageMB } = r.cuts;
    console.log(`cuts every 2 MB (image ${imageMB.toFixed(1)} MB):`);
    console.log(
      `  agent: delivered in ${agent.seconds.toFixed(1)} s, ${mb(agent.bytes)} sent (${(agent.bytes / MB / imageMB).toFixed(3)}×), ${agent.cuts} cuts`,
    );
    console.log(
      `  engine: ${outcome(engine)} after ${engine.seconds.toFixed(1)} s, ${mb(engine.bytes)} sent (${(engine.bytes / MB / imageMB).toFixed(3)}×), ${engine.cuts} cuts`,
    );
  }
  if (r.drops) {
    const { agent, engine, imageMB, linkKiBps, dropEveryS } = r.drops;
    console.log(`link of ${linkKiBps} KiB/s dropping every ${dropEveryS} s (image ${imageMB.toFixed(1)} MB):`);
    console.log(
      `  agent: delivered in ${agent.seconds.toFixed(1)} s, ${agent.linkMB.toFixed(1)} MB over the link (${(agent.linkMB / imageMB).toFixed(3)}×), ${agent.drops} drops`,
    );
    console.log(
      `  engine: ${outcome(engine)} after ${engine.seconds.toFixed(1)} s, ${engine.linkMB.toFixed(1)} MB over the link (${(engine.linkMB / imageMB).toFixed(3)}×), ${engine.drops} drops`,
    );
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await releases.releaseAll();
    process.exit();
  });
