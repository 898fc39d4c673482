/**
 * What remote access costs against going straight to the container, side by
 * side in one run, on a real hub process, a real agent process and the real
 * Docker Engine:
 *
 *   npx tsx bench/remote-access.ts [--runs 9] [--stream-mib 100] [--pings 500] [--exec-runs 21] [--no-build] [--json]
 *
 * Setup: `flotilla server` requiring keys (anonymous denied), one registered
 * `flotilla agent` at its defaults, one app whose container runs the servers of
 * test/e2e/support/forward-target.ts (an endless source on :9002, an echo on
 * :9003). The operator's side is the release build (`npm run build` first,
 * unless --no-build): `node dist/cli/bin.js port-forward …` once per target
 * port, and `node dist/cli/bin.js exec …`.
 *
 * Direct = a TCP connection from this machine to the container's address on
 * Docker's bridge (the same server, no tunnel); tunnel = the same through the
 * port-forward's local port (CLI → WebSocket → hub → MQTT → agent → container).
 *
 * 1. throughput: read --stream-mib MiB from :9002, direct and tunnel
 *    alternately, --runs times each; MB/s (10^6 bytes), medians.
 * 2. round trip: --pings sequential 64-byte echoes on one connection to :9003,
 *    direct and tunnel alternately, --runs rounds; p50/p95 of every sample,
 *    added = tunnel − direct.
 * 3. `flotilla exec DEVICE APP -- true` against `docker exec CONTAINER true`,
 *    alternately, --exec-runs times each, wall time of the whole command;
 *    `flotilla --version` beside them is the CLI's own start.
 *
 * Goals (issue 15): ≥ 20 MB/s through the hub, ≤ 5 ms added at p50, exec ≤ 2×
 * docker exec. The process exits by itself; Ctrl-C stops everything it
 * started. Loopback and Docker's bridge only.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { docker, removeContainersAndVolumes } from '../test/e2e/support/docker-cli.js';
import { FORWARD_TARGET_COMMAND } from '../test/e2e/support/forward-target.js';
import { ensureTestImages } from '../test/e2e/support/images.js';
import { deployApp, startRegisteredAgent, startRemoteHub } from '../test/e2e/support/remote-fleet.js';
import { freePort } from '../test/support/ports.js';
import { ManagedProcess, REPO_ROOT, stopAll } from '../test/support/processes.js';
import { waitFor } from '../test/support/wait.js';
import { positiveInt } from './int-arg.js';
import { releasesOnExit } from './releases.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '9' },
    'stream-mib': { type: 'string', default: '100' },
    pings: { type: 'string', default: '500' },
    'exec-runs': { type: 'string', default: '21' },
    'no-build': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const runs = positiveInt('runs', values.runs);
const streamBytes = positiveInt('stream-mib', values['stream-mib']) * 1024 * 1024;
const pings = positiveInt('pings', values.pings, 10);
const execRuns = positiveInt('exec-runs', values['exec-runs']);

const BUILT_CLI = join(REPO_ROOT, 'dist/cli/bin.js');
const say = (text: string) => {
  if (!values.json) console.error(text);
};
const releases = releasesOnExit(say);

function median(xs: number[]): number {
  return percentile(xs, 50);
}

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function connect(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port, noDelay: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Reads `bytes` from a fresh connection; MB/s from the connect to the last byte. */
async function readRate(host: string, port: number, bytes: number): Promise<number> {
  const started = performance.now();
  const socket = await connect(host, port);
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got >= bytes) {
        socket.destroy();
        resolve();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => (got >= bytes ? resolve() : reject(new Error(`closed after ${got} of ${bytes} bytes`))));
  });
  return bytes / 1e6 / ((performance.now() - started) / 1000);
}

/** `count` sequential 64-byte echoes on one connection; round trips in ms (the first, which opens the channel, excluded). */
async function roundTrips(host: string, port: number, count: number): Promise<number[]> {
  const socket = await connect(host, port);
  const payload = Buffer.alloc(64, 0x70);
  const samples: number[] = [];
  let failed: Error | undefined;
  socket.on('error', (err) => {
    failed = err;
  });
  try {
    for (let i = 0; i <= count; i++) {
      const sent = performance.now();
      await new Promise<void>((resolve, reject) => {
        let got = 0;
        const onData = (chunk: Buffer) => {
          got += chunk.length;
          if (got >= payload.length) {
            socket.off('data', onData);
            socket.off('close', onClose);
            resolve();
          }
        };
        const onClose = () => reject(failed ?? new Error(`the echo closed after ${samples.length} round trips`));
        socket.on('data', onData);
        socket.once('close', onClose);
        socket.write(payload);
      });
      if (i > 0) samples.push(performance.now() - sent);
    }
  } finally {
    socket.destroy();
  }
  return samples;
}

/** Wall time of a command to completion, ms; throws on a non-zero exit. */
function wallMs(command: string, args: string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(performance.now() - started) : reject(new Error(`${command} ${args.join(' ')}: exit ${code}: ${stderr}`)),
    );
  });
}

async function main(): Promise<void> {
  if (!values['no-build']) execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: values.json ? 'ignore' : 'inherit' });
  const suffix = Date.now().toString(36);
  const app = `bench-remote-${suffix}`;
  const deviceId = `bench-remote-${suffix}`;
  // Released newest first: the agent stops before its containers go, or it would start them again.
  releases.push({ what: 'containers', run: () => removeContainersAndVolumes(`flotilla.app=${app}`) });
  releases.push({ what: 'processes and temp dirs', run: stopAll });

  const images = await ensureTestImages();
  const remote = await startRemoteHub();
  await startRegisteredAgent(remote, deviceId);
  const containerId = await deployApp(remote, deviceId, app, { image: images.v1, command: FORWARD_TARGET_COMMAND });
  const containerIp = await docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', containerId);
  await waitFor('the echo server in the container', async () => (await roundTrips(containerIp, 9003, 1)).length === 1);
  say(`hub, agent and ${app} up; container at ${containerIp}`);

  const forward = async (targetPort: number): Promise<number> => {
    const local = await freePort();
    const child = spawn(
      process.execPath,
      [BUILT_CLI, ...remote.globals(), 'port-forward', deviceId, `127.0.0.1:${local}:${app}/web:${targetPort}`],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const proc = new ManagedProcess(`port-forward :${targetPort}`, child);
    releases.push({ what: proc.name, run: () => proc.stop() });
    await waitFor(proc.name, async () => {
      if (!proc.running) throw new Error(`exited: ${proc.output}`);
      const socket = await connect('127.0.0.1', local);
      socket.destroy();
      return true;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; its output: ${proc.output}`);
    });
    return local;
  };
  const sourcePort = await forward(9002);
  const echoPort = await forward(9003);

  // Warm-up, not counted: the first channel on each session, the JIT on every side.
  await readRate('127.0.0.1', sourcePort, 16 * 1024 * 1024);
  await roundTrips('127.0.0.1', echoPort, 50);

  const rate = { direct: [] as number[], tunnel: [] as number[] };
  const rtt = { direct: [] as number[], tunnel: [] as number[] };
  for (let i = 0; i < runs; i++) {
    rate.direct.push(await readRate(containerIp, 9002, streamBytes));
    rate.tunnel.push(await readRate('127.0.0.1', sourcePort, streamBytes));
    rtt.direct.push(...(await roundTrips(containerIp, 9003, pings)));
    rtt.tunnel.push(...(await roundTrips('127.0.0.1', echoPort, pings)));
    say(`round ${i + 1}/${runs}: ${rate.direct.at(-1)!.toFixed(0)} / ${rate.tunnel.at(-1)!.toFixed(1)} MB/s direct / tunnel`);
  }

  const exec = { docker: [] as number[], flotilla: [] as number[], version: [] as number[], session: [] as number[] };
  const sessionUrl = `${remote.hub.url.replace(/^http/, 'ws')}/api/v1/devices/${deviceId}/sessions`;
  const flotillaExec = [BUILT_CLI, ...remote.globals(), 'exec', deviceId, app, '--', 'true'];
  await wallMs(process.execPath, flotillaExec); // warm-up: the page cache for the CLI's files
  for (let i = 0; i < execRuns; i++) {
    exec.docker.push(await wallMs('docker', ['exec', containerId, 'true']));
    exec.flotilla.push(await wallMs(process.execPath, flotillaExec));
    exec.version.push(await wallMs(process.execPath, [BUILT_CLI, '--version']));
    exec.session.push(await execSessionMs(sessionUrl, remote.adminKey, app));
  }

  const result = {
    runs,
    streamMiB: streamBytes / 1048576,
    pings,
    execRuns,
    loadavg: loadavg().map((l) => Number(l.toFixed(2))),
    throughputMBps: { direct: median(rate.direct), tunnel: median(rate.tunnel), all: rate },
    roundTripMs: {
      direct: { p50: percentile(rtt.direct, 50), p95: percentile(rtt.direct, 95) },
      tunnel: { p50: percentile(rtt.tunnel, 50), p95: percentile(rtt.tunnel, 95) },
      addedP50: percentile(rtt.tunnel, 50) - percentile(rtt.direct, 50),
      addedP95: percentile(rtt.tunnel, 95) - percentile(rtt.direct, 95),
    },
    execMs: {
      docker: median(exec.docker),
      flotilla: median(exec.flotilla),
      flotillaVersion: median(exec.version),
      session: median(exec.session),
      ratio: median(exec.flotilla) / median(exec.docker),
    },
  };
  if (values.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  const f = (n: number, digits = 1) => n.toFixed(digits);
  const range = (xs: number[]) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;
  console.log(`
| measure                                        | direct                 | through the hub           | goal          |
| ---------------------------------------------- | ---------------------- | ------------------------- | ------------- |
| throughput, ${result.streamMiB} MiB read, median MB/s (range) | ${f(result.throughputMBps.direct)} (${range(rate.direct)}) | ${f(result.throughputMBps.tunnel)} (${range(rate.tunnel)}) | ≥ 20 MB/s |
| round trip, 64 B echo, p50 / p95 ms            | ${f(result.roundTripMs.direct.p50, 2)} / ${f(result.roundTripMs.direct.p95, 2)} | ${f(result.roundTripMs.tunnel.p50, 2)} / ${f(result.roundTripMs.tunnel.p95, 2)} (added ${f(result.roundTripMs.addedP50, 2)} / ${f(result.roundTripMs.addedP95, 2)}) | ≤ 5 ms added p50 |
| exec \`true\`, median wall ms                   | docker exec ${f(result.execMs.docker, 0)} | flotilla exec ${f(result.execMs.flotilla, 0)} (${f(result.execMs.ratio, 2)}×; \`flotilla --version\` ${f(result.execMs.flotillaVersion, 0)}; the session alone ${f(result.execMs.session, 0)}) | ≤ 2× |

load average ${result.loadavg.join(' ')}; ${runs} runs, ${pings} pings a round, ${execRuns} exec runs each`);
}

/**
 * The same exec as one session from a WebSocket client in this process, no
 * CLI start: upgrade, request, `opened`, until the hub closes after EXIT.
 */
function execSessionMs(url: string, key: string, app: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
    ws.on('open', () => ws.send(JSON.stringify({ kind: 'exec', app, command: ['true'], tty: false, stdin: false })));
    ws.on('error', reject);
    ws.on('close', (code) => (code === 1000 ? resolve(performance.now() - started) : reject(new Error(`session closed with ${code}`))));
  });
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => releases.releaseAll());
