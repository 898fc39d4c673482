/**
 * What the hub and the agent hold and burn while they run: RSS and CPU of
 * real processes on the real Docker Engine, the built code (dist/) beside
 * the tsx development launcher (cli/flotilla.js) in the same run.
 *
 *   npm run build && npx tsx bench/footprint.ts [--minutes 10] [--variants built,tsx] [--restarts 3] [--json]
 *
 * Per variant: `flotilla server` (loopback, temp data dir, default settings)
 * and one `flotilla agent` (default settings but for --device-id, --hub-url,
 * --data-dir), three apps applied through the hub's HTTP API, each one
 * busybox container printing one line a second. Both variants run side by
 * side, so they share the machine's noise over the same window.
 *
 * 1. Apply, wait until the hub lists every app `running` at the desired
 *    revision, settle (`--settle-s`).
 * 2. Window (`--minutes`): every `--sample-s` the VmRSS of each process
 *    (/proc/<pid>/status); CPU (utime + stime from /proc/<pid>/stat) over the
 *    whole window. Nothing polls the hub meanwhile: "at rest" is the hub with
 *    its agent connected and the apps' telemetry flowing in.
 * 3. Restarts (`--restarts`, one variant at a time): SIGTERM the agent, wait
 *    for it to exit, start it again with the three apps still running, and
 *    time until the hub's broker relays (a) its `status` online and (b) its
 *    first `state` report made after the start in which the observed revision
 *    is the desired one and every app is `running`: connected and reconciled.
 *
 * The built variant runs dist/cli/bin.js if the build has one, else
 * dist/cli/main.js's `main()` through `node -e`. A third variant,
 * `built-flags`, is the built code with `--built-node-flags="…"` on node's
 * command line (e.g. `--opt --sparkplug`, to measure the agent with the
 * compilers it turns off kept on): `--variants built,built-flags,tsx`.
 * The process exits by itself; Ctrl-C stops everything, removes the
 * containers and the temp dirs. Loopback only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import Dockerode from 'dockerode';
import mqtt, { type MqttClient } from 'mqtt';
import { DEFAULT_TOPIC_ROOT, type DeviceState, type DeviceStatus, Topics } from '../shared/index.js';
import { ensureTestImages } from '../test/e2e/support/images.js';
import { freePort } from '../test/support/ports.js';
import { clockTicksPerSecond, type MemorySample, readCpuTicks, readMemory } from './footprint/proc.js';
import { positiveInt } from './int-arg.js';
import { releasesOnExit } from './releases.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    'settle-s': { type: 'string', default: '10' },
    'sample-s': { type: 'string', default: '5' },
    restarts: { type: 'string', default: '3' },
    variants: { type: 'string', default: 'built,tsx' },
    'built-node-flags': { type: 'string', default: '' },
    json: { type: 'boolean', default: false },
  },
});
const windowMs = Number(values.minutes) * 60_000;
if (!(windowMs >= 1000)) {
  console.error(`--minutes must be a number of minutes, at least 1/60 (got ${values.minutes})`);
  process.exit(2);
}
const settleMs = positiveInt('settle-s', values['settle-s'], 0) * 1000;
const sampleMs = positiveInt('sample-s', values['sample-s'], 1) * 1000;
const restarts = positiveInt('restarts', values.restarts, 0);
const builtNodeFlags = values['built-node-flags'].split(' ').filter((flag) => flag !== '');

const REPO = resolve(import.meta.dirname, '..');
const DEVICE_PREFIX = 'bench-fp-';
const run = Date.now().toString(36);
const topics = new Topics(DEFAULT_TOPIC_ROOT);
const docker = new Dockerode();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (text: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${text}`);

type VariantName = 'built' | 'built-flags' | 'tsx';

/** The node arguments that run `flotilla` for a variant, before the command's own. */
function launcher(name: VariantName): string[] {
  if (name === 'tsx') return [join(REPO, 'cli/flotilla.js')];
  const flags = name === 'built-flags' ? builtNodeFlags : [];
  const bin = join(REPO, 'dist/cli/bin.js');
  if (existsSync(bin)) return [...flags, bin];
  const main = join(REPO, 'dist/cli/main.js');
  if (!existsSync(main)) throw new Error('no build in dist/: run `npm run build` first');
  const code = `const { main } = await import(${JSON.stringify(pathToFileURL(main).href)}); await main(['node', 'flotilla', ...process.argv.slice(1)]);`;
  return [...flags, '--input-type=module', '-e', code, '--'];
}

// ---------------------------------------------------------------------------
// Resources, released in reverse order on the way out (Ctrl-C too).

const releases = releasesOnExit(say);

/** Containers of the given devices, or of any run of this benchmark (`undefined`: names of an earlier run's apps would collide). */
async function removeContainers(deviceIds?: readonly string[]): Promise<number> {
  const listed = await docker.listContainers({ all: true, filters: { label: ['flotilla.device'] } });
  const ours = listed.filter((c) => {
    const device = c.Labels['flotilla.device'] ?? '';
    return deviceIds ? deviceIds.includes(device) : device.startsWith(DEVICE_PREFIX);
  });
  for (const c of ours) await docker.getContainer(c.Id).remove({ force: true, v: true });
  return ours.length;
}

// ---------------------------------------------------------------------------
// Processes.

class Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    args: string[],
    logFile: string,
  ) {
    // Output to a file, as a service manager would take it: a pipe nobody reads would block the process.
    const fd = openSync(logFile, 'a');
    this.child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error(`${this.name} did not start`);
    return pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

interface Variant {
  name: VariantName;
  dir: string;
  hub: Proc;
  api: string;
  mqttUrl: string;
  deviceId: string;
  agentArgs: string[];
  agent: Proc;
  watcher: MqttClient;
  /** Live (not retained) messages on the device's status and state topics. */
  seen: { at: number; status?: DeviceStatus; state?: DeviceState }[];
  memory: { hub: MemorySample[]; agent: MemorySample[] };
  cpuPercent: { hub: number; agent: number };
  startMs: { online: number[]; reconciled: number[] };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function startVariant(name: VariantName, image: string): Promise<Variant> {
  const dir = mkdtempSync(join(tmpdir(), `flotilla-bench-fp-${name}-`));
  releases.push({ what: `${name} temp dir`, run: () => rmSync(dir, { recursive: true, force: true }) });
  const [mqttPort, wsPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const hubArgs = ['server', '--data-dir', join(dir, 'hub'), '--host', '127.0.0.1'];
  hubArgs.push('--mqtt-port', `${mqttPort}`, '--ws-port', `${wsPort}`, '--http-port', `${httpPort}`);
  const hub = new Proc(`${name} hub`, [...launcher(name), ...hubArgs], join(dir, 'hub.log'));
  releases.push({ what: `${name} hub`, run: () => hub.stop() });
  const api = `http://127.0.0.1:${httpPort}/api/v1`;
  await waitFor(`${name} hub`, async () => {
    if (!hub.running) throw new Error(`${name} hub exited: ${readFileSync(join(dir, 'hub.log'), 'utf8').slice(-2000)}`);
    return (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok || undefined;
  });

  const deviceId = `${DEVICE_PREFIX}${name}-${run}`;
  releases.push({ what: `${name} containers`, run: () => removeContainers([deviceId]) });
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const watcher = await mqtt.connectAsync(mqttUrl, { protocolVersion: 4 });
  releases.push({ what: `${name} watcher`, run: () => watcher.endAsync(true) });
  const seen: Variant['seen'] = [];
  watcher.on('message', (topic, payload, packet) => {
    // Retained copies are what the broker kept from before: only live reports count.
    if (packet.retain || payload.length === 0) return;
    const body = JSON.parse(payload.toString()) as unknown;
    const at = performance.now();
    if (topic.endsWith('/status')) seen.push({ at, status: body as DeviceStatus });
    else seen.push({ at, state: body as DeviceState });
  });
  await watcher.subscribeAsync([topics.device(deviceId, 'status'), topics.device(deviceId, 'state')], { qos: 1 });

  const agentArgs = [...launcher(name), 'agent', '--device-id', deviceId, '--hub-url', mqttUrl, '--data-dir', join(dir, 'agent')];
  const agent = new Proc(`${name} agent`, agentArgs, join(dir, 'agent.log'));
  const variant: Variant = {
    name,
    dir,
    hub,
    api,
    mqttUrl,
    deviceId,
    agentArgs,
    agent,
    watcher,
    seen,
    memory: { hub: [], agent: [] },
    cpuPercent: { hub: 0, agent: 0 },
    startMs: { online: [], reconciled: [] },
  };
  releases.push({ what: `${name} agent`, run: () => variant.agent.stop() });

  for (let i = 1; i <= 3; i++) {
    const app = `fp-${name}-${i}`;
    const script = `n=0; trap 'exit 0' TERM INT; while :; do n=$((n+1)); echo "${app} n=$n level=info msg=\\"sensor reading ok\\""; sleep 1 & wait $!; done`;
    const body = {
      name: app,
      scheduling: { devices: [deviceId] },
      spec: { containers: [{ name: 'main', image, command: ['/bin/sh', '-c', script] }] },
    };
    const res = await fetch(`${api}/apps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${name}: applying ${app} failed: ${res.status} ${await res.text()}`);
  }
  await waitFor(`${name}: three apps running`, async () => (isReconciled(await deviceView(variant)) ? true : undefined), 180_000, 500);
  return variant;
}

interface DeviceView {
  desiredRevision?: number;
  observedRevision?: number;
  apps: { name: string; phase: string }[];
}

async function deviceView(v: Variant): Promise<DeviceView | undefined> {
  const res = await fetch(`${v.api}/devices/${v.deviceId}`);
  return res.ok ? ((await res.json()) as DeviceView) : undefined;
}

function isReconciled(view: DeviceView | undefined, desiredRevision = view?.desiredRevision): boolean {
  return (
    view !== undefined &&
    desiredRevision !== undefined &&
    view.observedRevision === desiredRevision &&
    view.apps.length === 3 &&
    view.apps.every((app) => app.phase === 'running')
  );
}

/** Stops the agent, starts it again with the apps still running, and times its first reports. */
async function restartAgent(v: Variant): Promise<void> {
  const desiredRevision = (await deviceView(v))?.desiredRevision;
  await v.agent.stop();
  await sleep(1000);
  const from = v.seen.length;
  const began = performance.now();
  v.agent = new Proc(`${v.name} agent`, v.agentArgs, join(v.dir, 'agent.log'));
  const after = () => v.seen.slice(from);
  const online = await waitFor(`${v.name} agent online`, async () => after().find((m) => m.status?.online === true), 30_000, 5);
  const reconciled = await waitFor(
    `${v.name} agent reconciled`,
    async () => after().find((m) => m.state !== undefined && isReconciled(m.state, desiredRevision)),
    60_000,
    5,
  );
  v.startMs.online.push(online.at - began);
  v.startMs.reconciled.push(reconciled.at - began);
}

// ---------------------------------------------------------------------------

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const kib = (n: number) => Math.round(n).toLocaleString('en-US');
const mib = (kb: number) => (kb / 1024).toFixed(1);

async function main(): Promise<void> {
  const variantNames = values.variants.split(',') as VariantName[];
  for (const name of variantNames) if (!['built', 'built-flags', 'tsx'].includes(name)) throw new Error(`unknown variant ${name}`);
  for (const name of variantNames) launcher(name); // no build: fail before starting anything
  const left = await removeContainers();
  if (left > 0) say(`removed ${left} containers left by an earlier run`);
  const images = await ensureTestImages();

  const variants: Variant[] = [];
  for (const name of variantNames) {
    say(`${name}: starting hub and agent, applying three apps`);
    variants.push(await startVariant(name, images.v1));
  }
  say(`all apps running; settling ${settleMs / 1000} s`);
  await sleep(settleMs);

  say(`window: ${windowMs / 60_000} min, a sample every ${sampleMs / 1000} s`);
  const cpuBefore = variants.map((v) => ({ hub: readCpuTicks(v.hub.pid), agent: readCpuTicks(v.agent.pid) }));
  const windowBegan = performance.now();
  const sample = () => {
    for (const v of variants) {
      v.memory.hub.push(readMemory(v.hub.pid));
      v.memory.agent.push(readMemory(v.agent.pid));
    }
  };
  sample();
  for (let next = sampleMs; next < windowMs; next += sampleMs) {
    await sleep(Math.max(0, windowBegan + next - performance.now()));
    sample();
    if (next % 60_000 < sampleMs) {
      say(
        variants
          .map((v) => `${v.name}: hub ${mib(v.memory.hub.at(-1)!.rssKb)} MiB, agent ${mib(v.memory.agent.at(-1)!.rssKb)} MiB`)
          .join('; '),
      );
    }
  }
  await sleep(Math.max(0, windowBegan + windowMs - performance.now()));
  sample();
  const windowS = (performance.now() - windowBegan) / 1000;
  variants.forEach((v, i) => {
    const toPercent = (ticks: number) => (ticks / clockTicksPerSecond() / windowS) * 100;
    v.cpuPercent = {
      hub: toPercent(readCpuTicks(v.hub.pid) - cpuBefore[i]!.hub),
      agent: toPercent(readCpuTicks(v.agent.pid) - cpuBefore[i]!.agent),
    };
  });

  for (let r = 0; r < restarts; r++) {
    for (const v of variants) {
      await restartAgent(v);
      say(
        `${v.name}: restart ${r + 1}: online ${v.startMs.online.at(-1)!.toFixed(0)} ms, reconciled ${v.startMs.reconciled.at(-1)!.toFixed(0)} ms`,
      );
    }
  }
  report(variants, windowS);
}

function report(variants: Variant[], windowS: number): void {
  const rows: [string, (v: Variant) => number, (n: number) => string][] = [
    ['hub RSS at rest, end of window (KiB)', (v) => v.memory.hub.at(-1)!.rssKb, kib],
    ['hub RSS, highest sample (KiB)', (v) => Math.max(...v.memory.hub.map((m) => m.rssKb)), kib],
    ['hub CPU, % of one core', (v) => v.cpuPercent.hub, (n) => n.toFixed(2)],
    ['agent RSS, end of window (KiB)', (v) => v.memory.agent.at(-1)!.rssKb, kib],
    ['  of which anonymous (KiB)', (v) => v.memory.agent.at(-1)!.anonKb, kib],
    ['  of which file-backed (KiB)', (v) => v.memory.agent.at(-1)!.fileKb, kib],
    ['agent RSS, highest sample (KiB)', (v) => Math.max(...v.memory.agent.map((m) => m.rssKb)), kib],
    ['agent CPU, % of one core', (v) => v.cpuPercent.agent, (n) => n.toFixed(2)],
    ['agent start → online, median (ms)', (v) => median(v.startMs.online), (n) => n.toFixed(0)],
    ['agent start → reconciled, median (ms)', (v) => median(v.startMs.reconciled), (n) => n.toFixed(0)],
  ];
  const [first, second] = variants;
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  if (values.json) {
    const out = variants.map((v) => ({
      variant: v.name,
      ...Object.fromEntries(rows.map(([label, get]) => [label.trim(), get(v)])),
      startMs: v.startMs,
      samples: { hub: v.memory.hub, agent: v.memory.agent },
    }));
    console.log(JSON.stringify({ windowS, load, builtNodeFlags, variants: out }, null, 2));
    return;
  }
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '?';
  console.log(`\n${cpu}, node ${process.version}, load average ${load} at the end`);
  console.log(`window ${(windowS / 60).toFixed(1)} min after ${settleMs / 1000} s of settling; ${restarts} agent restarts per variant`);
  if (variants.some((v) => v.name === 'built-flags')) console.log(`built-flags: node ${builtNodeFlags.join(' ')}`);
  console.log('');
  const ratio = first && second ? ` | ${first.name} / ${second.name}` : '';
  console.log(`| measure | ${variants.map((v) => v.name).join(' | ')}${ratio} |`);
  console.log(`| --- | ${variants.map(() => '---').join(' | ')}${ratio ? ' | ---' : ''} |`);
  for (const [label, get, format] of rows) {
    const cells = variants.map((v) => format(get(v)));
    const r = first && second ? ` | ${(get(first) / get(second)).toFixed(2)}×` : '';
    console.log(`| ${label} | ${cells.join(' | ')}${r} |`);
  }
  for (const v of variants) {
    console.log(
      `\n${v.name} restarts: online ${v.startMs.online.map((n) => n.toFixed(0)).join(', ')} ms; reconciled ${v.startMs.reconciled.map((n) => n.toFixed(0)).join(', ')} ms`,
    );
  }
}

try {
  await main();
} finally {
  await releases.releaseAll();
}
