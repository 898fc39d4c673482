/**
 * What collecting metrics costs the agent, measured on a real Docker Engine.
 *
 *   npx tsx bench/agent-metrics-cost.ts [--counts 1,5,10] [--window 30] [--settle 10]
 *
 * For each count N, two `flotilla agent` processes run side by side, each
 * with N running containers of its own (idle busybox httpd, one app):
 *   - baseline: `--metrics-interval 1h` — it takes its first readings at
 *     start and never samples again: what remains is reconcile resyncs, MQTT
 *     keepalives, log following;
 *   - metrics: `--metrics-interval 1s`.
 * Side by side, both see the same machine (this box is shared with other
 * test runs) over the same window. After the containers run and a settle
 * time (tsx compiles at start, the first samples run cold), both are
 * measured over `--window` seconds: CPU time of every thread (sum of
 * /proc/<pid>/task/<tid>/schedstat, in ns — /proc/<pid>/stat counts 10 ms
 * ticks). The cost of a sample is the difference over the number of samples
 * a subscriber on the hub received.
 *
 * dockerd's CPU over the window is reported as well, but it serves both agents
 * and anything else on the machine, so it is only an upper bound.
 *
 * Then, in this process (no agent running), the two ways of reading N
 * containers' counters are timed: the cgroup files the agent reads, and the
 * engine's one-shot stats API it falls back to.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Dockerode from 'dockerode';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { DockerRuntime } from '../agent/runtime/docker-runtime.js';
import { CgroupReader } from '../agent/telemetry/metrics/cgroup.js';
import { MetricsCollector } from '../agent/telemetry/metrics/collector.js';
import { startHub } from '../broker/hub.js';
import { DEFAULT_TOPIC_ROOT, type Metrics, Topics } from '../shared/index.js';
import { ensureTestImages } from '../test/e2e/support/images.js';

const { values } = parseArgs({
  options: {
    counts: { type: 'string', default: '1,5,10' },
    window: { type: 'string', default: '30' },
    settle: { type: 'string', default: '10' },
  },
});
const counts = values.counts.split(',').map(Number);
const windowMs = Number(values.window) * 1000;
const settleMs = Number(values.settle) * 1000;
const run = Date.now().toString(36);
const devices = { baseline: `bench-idle-${run}`, metrics: `bench-metrics-${run}` };
const CLI = resolve(import.meta.dirname, '../cli/flotilla.js');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU time (ns) of every live thread of a process. */
function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited between readdir and read
    }
  }
  return total;
}

function dockerdPid(): number {
  return Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function main() {
  const images = await ensureTestImages();
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-bench-metrics-'));
  const hub = await startHub(
    { dataDir: join(dataDir, 'hub'), mqttPort: 0, wsPort: 0, httpPort: 0, logLevel: 'silent' },
    { logger: pino({ level: 'silent' }) },
  );
  const hubUrl = `mqtt://127.0.0.1:${hub.ports.mqtt}`;
  const api = `http://127.0.0.1:${hub.ports.http}/api/v1`;
  const watcher = await mqtt.connectAsync(hubUrl, { protocolVersion: 4 });
  await watcher.subscribeAsync(new Topics(DEFAULT_TOPIC_ROOT).device(devices.metrics, 'metrics'));
  const received: Metrics[] = [];
  watcher.on('message', (_t, payload) => received.push(JSON.parse(payload.toString()) as Metrics));

  const agents = new Set<ChildProcess>();
  const startAgentProcess = (deviceId: string, interval: string) => {
    const args = ['agent', '--device-id', deviceId, '--hub-url', hubUrl, '--data-dir', join(dataDir, deviceId)];
    const child = spawn(process.execPath, [CLI, ...args, '--metrics-interval', interval, '--log-level', 'warn'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    agents.add(child);
    child.once('exit', () => agents.delete(child));
    return child;
  };
  const stopAgents = () =>
    Promise.all(
      [...agents].map((child) => {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        return exited;
      }),
    );
  const apply = async (deviceId: string, n: number) => {
    const containers = Array.from({ length: n }, (_, i) => ({ name: `c${i}`, image: images.v1 }));
    const body = { name: deviceId, scheduling: { devices: [deviceId] }, spec: { containers, update: { minReadySeconds: 0 } } };
    const res = await fetch(`${api}/apps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`apply failed: ${await res.text()}`);
  };
  const running = async (deviceId: string) => {
    const res = await fetch(`${api}/devices/${deviceId}`);
    if (!res.ok) return false;
    const device = (await res.json()) as { observedRevision?: number; apps: { name: string; phase: string }[] };
    return device.apps.find((a) => a.name === deviceId)?.phase === 'running';
  };

  const rows: string[] = [];
  const microRows: string[] = [];
  try {
    for (const n of counts) {
      const baseline = startAgentProcess(devices.baseline, '1h');
      const sampling = startAgentProcess(devices.metrics, '1s');
      await Promise.all([apply(devices.baseline, n), apply(devices.metrics, n)]);
      await until(
        `${n} containers running on both devices`,
        async () => (await running(devices.baseline)) && (await running(devices.metrics)),
      );
      await sleep(settleMs);

      const before = {
        baseline: cpuNs(baseline.pid!),
        sampling: cpuNs(sampling.pid!),
        dockerd: cpuNs(dockerdPid()),
        samples: received.length,
      };
      await sleep(windowMs);
      const baselineMs = (cpuNs(baseline.pid!) - before.baseline) / 1e6;
      const samplingMs = (cpuNs(sampling.pid!) - before.sampling) / 1e6;
      const dockerdMs = (cpuNs(dockerdPid()) - before.dockerd) / 1e6;
      const samples = received.length - before.samples;
      const last = received.at(-1);
      await stopAgents();
      if (last?.containers.length !== n) throw new Error(`expected ${n} containers in a sample, saw ${last?.containers.length}`);

      const perSample = (samplingMs - baselineMs) / Math.max(1, samples);
      const rss = last.agent ? (last.agent.rssBytes / 2 ** 20).toFixed(0) : '–';
      rows.push(
        `| ${n} | ${samples} | ${baselineMs.toFixed(0)} | ${samplingMs.toFixed(0)} | ${(samplingMs / Math.max(1, baselineMs)).toFixed(1)}× | ` +
          `**${perSample.toFixed(2)}** | ${((samplingMs / windowMs) * 100).toFixed(2)} | ${(dockerdMs / Math.max(1, samples)).toFixed(2)} | ${rss} |`,
      );
      console.error(`N=${n}: ${rows.at(-1)}`);
      microRows.push(...(await compareSources(devices.metrics, n)));
    }
  } finally {
    await stopAgents();
    watcher.end(true);
    // The agents are gone: remove what they left directly.
    const docker = new Dockerode();
    for (const deviceId of Object.values(devices)) {
      for (const c of await docker.listContainers({ all: true, filters: { label: [`flotilla.device=${deviceId}`] } })) {
        await docker.getContainer(c.Id).remove({ force: true, v: true });
      }
    }
    await hub.close();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '?';
  console.log(
    `\n${cpu}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end`,
  );
  console.log(`window ${windowMs / 1000} s after ${settleMs / 1000} s of settling; metrics interval 1 s, baseline 1 h\n`);
  console.log(
    '| containers | samples | agent CPU, baseline (ms) | agent CPU, sampling (ms) | ratio | agent CPU per sample (ms) | sampling agent, % of one core | dockerd CPU per sample, upper bound (ms) | agent RSS (MiB) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
  console.log('\n| containers | source | wall per round (ms) | reader CPU per round (ms) | dockerd CPU per round (ms) |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of microRows) console.log(row);
}

/** Reads one device's containers' counters both ways, and takes whole samples, in this process; no agent runs meanwhile. */
async function compareSources(deviceId: string, n: number): Promise<string[]> {
  const runtime = new DockerRuntime(new Dockerode(), undefined, { deviceId });
  const managed = (await runtime.listManaged()).filter((c) => c.pid !== undefined);
  const reader = new CgroupReader();
  const quiet = { warn() {}, info() {}, debug() {} };
  const collector = new MetricsCollector({ runtime, intervalMs: 1000, publish: () => true, nextSeq: () => 1, logger: quiet });
  const ways: [string, number, () => Promise<unknown>][] = [
    ['cgroup files', 50, () => Promise.all(managed.map((c) => reader.read({ id: c.id, pid: c.pid!, networkMode: c.networkMode ?? '' })))],
    ['engine stats API (one-shot, in parallel)', 3, () => Promise.all(managed.map((c) => runtime.stats(c.id)))],
    // The whole sample as the agent takes it (list + inspect, host, containers, JSON), warmed up by 50 runs first.
    [
      'whole sample, warm (collector.sample() + JSON)',
      50,
      async () => {
        const sample = await collector.sample();
        JSON.stringify(sample);
        return sample.containers;
      },
    ],
  ];
  const rows: string[] = [];
  for (const [name, rounds, read] of ways) {
    // Warm: the first read parses mountinfo and opens the connection; 50 runs let V8 optimize the sample.
    for (let i = 0; i < (rounds > 3 ? 50 : 1); i++) await read();
    const cpu = process.cpuUsage();
    const dockerd = cpuNs(dockerdPid());
    const began = performance.now();
    for (let i = 0; i < rounds; i++) {
      const values = (await read()) as unknown[];
      if (values.length !== n || values.some((v) => v === undefined)) throw new Error(`${name}: no counters for some container`);
    }
    const wall = (performance.now() - began) / rounds;
    const used = process.cpuUsage(cpu);
    const dockerdMs = (cpuNs(dockerdPid()) - dockerd) / 1e6 / rounds;
    rows.push(
      `| ${n} | ${name} | ${wall.toFixed(1)} | ${((used.user + used.system) / 1000 / rounds).toFixed(2)} | ${dockerdMs.toFixed(2)} |`,
    );
  }
  return rows;
}

await main();
