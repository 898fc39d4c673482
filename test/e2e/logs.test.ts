/**
 * The agent's log pipeline with real processes and a real Docker Engine:
 * containers' stdout and stderr reach a plain mqtt.js subscriber on the hub's
 * `…/devices/{id}/logs` topic, in order and with their streams; a second app
 * flooding its output is rate-limited and reported with a `suppressed N
 * lines` marker, while the agent's memory stays bounded and the quiet app's
 * lines keep arriving.
 */
import { readFileSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LogBatch, type LogLine, Topics } from '../../shared/index.js';
import { connectClient, Inbox } from '../support/mqtt-client.js';
import { type AgentProcess, type HubProcess, runCli, spawnCli, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { DeviceApps } from './support/device-apps.js';
import { containerIds, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, type TestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-logs-${suffix}`;
const quietApp = `e2e-logs-quiet-${suffix}`;
const floodApp = `e2e-logs-flood-${suffix}`;
/** Lines per second per app for this agent: low, so the flood is cut hard and the test's counts are clear. */
const RATE = 50;
/**
 * The agent's RSS must stay under this during the flood. Measured on the
 * 2-core dev box (node 20, sources through tsx), two runs: 127–130 MiB before
 * the flood, 148–151 MiB at the peak while a shell loop wrote 20–30k lines a
 * second for 20 s (flat after the first second; the agent used a quarter of
 * one core). 200 MiB leaves room for GC timing without hiding a leak: keeping
 * every flood line would add several MiB a second here.
 */
const RSS_BOUND_BYTES = 200 * 1024 * 1024;
const FLOOD_SECONDS = 20;

/** Prints four known lines, alternating streams, then one line a second until stopped. */
const QUIET_SCRIPT = [
  "trap 'exit 0' TERM",
  'echo "out-1 hello"',
  'sleep 0.2',
  'echo "err-1 warning" >&2',
  'sleep 0.2',
  'echo "out-2 ünïcode ✓"',
  'sleep 0.2',
  'echo "err-2 done" >&2',
  'i=0',
  'while true; do sleep 1; i=$((i+1)); echo "tick $i"; done',
].join('\n');

/** Writes as fast as the shell can. */
const FLOOD_SCRIPT = 'trap \'exit 0\' TERM\ni=0\nwhile true; do i=$((i+1)); echo "flood $i"; done';

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

describeDocker('log pipeline on a real Docker Engine', () => {
  let images: TestImages;
  let hub: HubProcess;
  let agent: AgentProcess;
  let subscriber: MqttClient;
  let inbox: Inbox;
  let topic: string;
  const apps = new DeviceApps(() => hub, deviceId, { update: {} });

  const lines = (app?: string): LogLine[] =>
    inbox
      .on(topic)
      .flatMap((m) => (m.json as LogBatch).lines)
      .filter((l) => app === undefined || l.app === app);

  beforeAll(async () => {
    images = await ensureTestImages();
    hub = await startHubProcess();
    topic = new Topics('flotilla/v1').device(deviceId, 'logs');
    subscriber = await connectClient(hub.mqttUrl);
    inbox = new Inbox(subscriber);
    await subscriber.subscribeAsync(topic, { qos: 1 });
    agent = startAgentProcess(hub, deviceId, {}, { extraArgs: ['--log-rate', `${RATE}`, '--log-buffer', '1m'] });
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'get', 'devices'])).stdout.includes(deviceId));
  }, 120_000);

  afterAll(async () => {
    await subscriber?.endAsync();
    await stopAll();
    await removeContainersAndVolumes(`flotilla.device=${deviceId}`);
  });

  it('delivers stdout and stderr lines in order, with their streams and timestamps, in batches with growing seqs', async () => {
    // An operator following the app's logs before it even exists.
    const follower = spawnCli('flotilla logs -f', ['--hub', hub.url, 'logs', deviceId, quietApp, '-f'], { NO_COLOR: '1' });
    await apps.apply(quietApp, { image: images.v1, command: ['/bin/sh', '-c', QUIET_SCRIPT] });
    await waitFor('the four known lines', () => lines(quietApp).length >= 4, { timeoutMs: 60_000 });
    const first = lines(quietApp).slice(0, 4);
    expect(first.map((l) => [l.stream, l.line])).toEqual([
      ['stdout', 'out-1 hello'],
      ['stderr', 'err-1 warning'],
      ['stdout', 'out-2 ünïcode ✓'],
      ['stderr', 'err-2 done'],
    ]);
    for (const l of first) {
      expect(l).toMatchObject({ app: quietApp, container: 'web' });
      // Docker's own timestamp, with its nanoseconds.
      expect(l.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    }
    const seqs = inbox.on(topic).map((m) => (m.json as LogBatch).seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);

    // The hub stored them too: the operator's `flotilla logs` shows them.
    const out = await waitFor('flotilla logs to show the lines', async () => {
      const result = await runCli(['--hub', hub.url, 'logs', deviceId, quietApp]);
      return result.code === 0 && result.stdout.includes('err-2 done') ? result.stdout : undefined;
    });
    const known = (text: string) => text.split('\n').filter((l) => /out-|err-/.test(l));
    const expectKnownLines = (shown: string[]) => {
      expect(shown).toHaveLength(4);
      expect(shown[0]).toMatch(/out-1 hello$/);
      expect(shown[1]).toMatch(/\[stderr\].*err-1 warning$/);
      expect(shown[2]).toMatch(/out-2 ünïcode ✓$/);
      expect(shown[3]).toMatch(/\[stderr\].*err-2 done$/);
    };
    expectKnownLines(known(out));
    // The follower saw the same lines live, in the same order, and stops cleanly on Ctrl-C.
    await waitFor('the follower to show the lines', () => follower.output.includes('err-2 done'), { timeoutMs: 20_000 });
    expectKnownLines(known(follower.output));
    follower.child.kill('SIGINT');
    expect(await follower.exited).toBe(0);
  }, 90_000);

  it('rate-limits a flooding app with a visible marker, keeps the agent’s memory bounded, and still delivers the quiet app', async () => {
    const pid = agent.proc.child.pid;
    if (pid === undefined) throw new Error('agent has no pid');
    const before = rssBytes(pid);
    const ticksBefore = lines(quietApp).filter((l) => l.line.startsWith('tick')).length;
    await apps.apply(floodApp, { image: images.v1, command: ['/bin/sh', '-c', FLOOD_SCRIPT] });
    await waitFor('the first flood lines', () => lines(floodApp).length > 0, { timeoutMs: 60_000 });

    const floodStart = Date.now();
    const cpuStart = cpuSeconds(pid);
    let peak = before;
    const samples: number[] = [];
    while (Date.now() - floodStart < FLOOD_SECONDS * 1000) {
      const rss = rssBytes(pid);
      samples.push(rss);
      peak = Math.max(peak, rss);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const cpu = (cpuSeconds(pid) - cpuStart) / ((Date.now() - floodStart) / 1000);
    const flood = lines(floodApp);
    const markers = flood.filter((l) => l.stream === 'system');
    const passed = flood.length - markers.length;
    const suppressed = markers.reduce((sum, m) => sum + (m.suppressed ?? 0), 0);
    const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
    console.log(
      `[e2e logs] agent RSS before ${mib(before)}, peak ${mib(peak)} during a ${FLOOD_SECONDS}s flood ` +
        `(samples: ${samples.map((s) => (s / 1024 / 1024).toFixed(0)).join(' ')}); ` +
        `agent CPU ${(cpu * 100).toFixed(0)}% of one core; ` +
        `flood lines: ${passed} delivered, ${suppressed} suppressed in ${markers.length} markers`,
    );

    expect(peak).toBeLessThan(RSS_BOUND_BYTES);
    expect(markers.length).toBeGreaterThan(0);
    expect(markers[0]?.line).toMatch(/^suppressed \d+ lines \(rate limit\)$/);
    expect(suppressed).toBeGreaterThan(passed);
    // About RATE a second after a burst of 2×RATE, whatever the flood's speed, counted from
    // the flood container's start by the engine's clock: lines it wrote before the first
    // batch reached this test (a log batch window later) count too.
    const [floodId] = await containerIds(`flotilla.app=${floodApp}`);
    const floodStartedMs = Date.parse((await inspect(floodId!)).State.StartedAt);
    const seconds = (Date.now() - floodStartedMs) / 1000 + 2;
    expect(passed).toBeLessThanOrEqual(2 * RATE + RATE * seconds);
    // The quiet app was not starved: its ticks kept coming during the flood.
    const ticks = lines(quietApp).filter((l) => l.line.startsWith('tick'));
    expect(ticks.length - ticksBefore).toBeGreaterThanOrEqual(FLOOD_SECONDS - 5);
    expect(ticks.map((l) => Number(l.line.split(' ')[1]))).toEqual(ticks.map((_, i) => i + 1));

    // The operator sees the marker too.
    const out = await runCli(['--hub', hub.url, 'logs', deviceId, floodApp, '--tail', '1000']);
    expect(out.stdout).toMatch(/\[system\].*suppressed \d+ lines \(rate limit\)/);
  }, 150_000);
});
