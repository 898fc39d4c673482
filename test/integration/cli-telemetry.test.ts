/**
 * `flotilla logs|events|top|metrics`: the real CLI, run as a child process,
 * against a real hub (Aedes, HTTP API, SQLite) started in this process. A
 * device is a plain MQTT.js client that publishes its state and status, then
 * telemetry as an agent would: a log batch, metrics samples, an event.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DeviceEvent, type LogBatch, type LogLine, type Metrics, Topics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { CLI, REPO_ROOT, type RunResult, runCli } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/** Each CLI run starts node and tsx (about a second on a busy two-core machine). */
const SLOW = { timeout: 60_000 };
const DEVICE = 'pi-1';
const topics = new Topics();
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** Timestamps a little before the test file started, so `--since 10m` takes them and the gaps are exact. */
const START = Date.now();
const at = (secondsAgo: number) => new Date(START - secondsAgo * 1000).toISOString();

function line(overrides: Partial<LogLine> & Pick<LogLine, 'line'>): LogLine {
  return { app: 'gateway', container: 'main', stream: 'stdout', ts: at(30), ...overrides };
}

function sample(seq: number, secondsAgo: number, rxBytes: number): Metrics {
  return {
    seq,
    ts: at(secondsAgo),
    host: {
      cpuPercent: 23.5,
      cpuCount: 4,
      load1: 0.75,
      load5: 0.5,
      load15: 0.25,
      memTotalBytes: 2 * GiB,
      memAvailableBytes: 1.5 * GiB,
      memUsedBytes: 512 * MiB,
      disks: [{ name: 'root', path: '/', usedBytes: 3 * GiB, freeBytes: 13 * GiB, totalBytes: 16 * GiB }],
      temperatureC: 51.5,
      netRxBytes: rxBytes,
      netTxBytes: 1000,
      uptimeSeconds: 3600,
    },
    containers: [
      {
        app: 'gateway',
        container: 'main',
        id: 'c0ffee',
        cpuPercent: 4.5,
        memBytes: 48 * MiB,
        memLimitBytes: 128 * MiB,
        netRxBytes: 4096,
        netTxBytes: 2048,
        blkReadBytes: 0,
        blkWriteBytes: 8192,
        pids: 5,
        restartCount: 0,
      },
    ],
  };
}

const cleanup = new Cleanup();
let hub: TestHub;
let device: MqttClient;

function flotilla(args: string[], hubUrl = hub.httpUrl): Promise<RunResult> {
  return runCli(args, { env: { FLOTILLA_HUB: hubUrl, NO_COLOR: '1' } });
}

/** Connects a device, publishes its retained state and status, and waits until the hub knows it. */
async function connectDevice(target: TestHub, id = DEVICE): Promise<MqttClient> {
  const client = await connectClient(target.mqttUrl, { clientId: id });
  await client.publishAsync(topics.device(id, 'state'), JSON.stringify(deviceState(id)), { qos: 1, retain: true });
  await client.publishAsync(topics.device(id, 'status'), JSON.stringify({ online: true, at: new Date().toISOString() }), {
    qos: 1,
    retain: true,
  });
  await waitFor(`${id} known to the hub`, async () => (await http(target.httpUrl, 'GET', `/api/v1/devices/${id}`)).status === 200);
  return client;
}

async function publishLogs(client: MqttClient, batch: LogBatch, id = DEVICE): Promise<void> {
  await client.publishAsync(topics.device(id, 'logs'), JSON.stringify(batch), { qos: 1 });
}

/** A `flotilla …` left running (a follow), its stdout and stderr kept apart. */
class Follower {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static start(args: string[], hubUrl: string): Follower {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, FLOTILLA_HUB: hubUrl, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const follower = new Follower(child);
    cleanup.add(`flotilla ${args.join(' ')}`, () => follower.kill());
    return follower;
  }

  waitForOutput(text: string): Promise<true> {
    return waitFor(`"${text}" on the follower's stdout`, () => this.stdout.includes(text), { timeoutMs: 20_000, intervalMs: 50 });
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

beforeAll(async () => {
  hub = await startTestHub();
  device = await connectDevice(hub);
  await publishLogs(device, {
    seq: 1,
    lines: [
      line({ line: 'listening on :80', ts: at(40) }),
      line({ line: 'upstream slow', stream: 'stderr', ts: at(39) }),
      line({ container: 'worker', line: 'job 1 done', ts: at(38) }),
      line({ stream: 'system', line: 'suppressed 3 lines', suppressed: 3, ts: at(37) }),
    ],
  });
  await device.publishAsync(topics.device(DEVICE, 'metrics'), JSON.stringify(sample(1, 20, 0)), { qos: 1 });
  await device.publishAsync(topics.device(DEVICE, 'metrics'), JSON.stringify(sample(2, 10, 10_240)), { qos: 1 });
  const event: DeviceEvent = { seq: 1, ts: at(35), type: 'started', app: 'gateway', container: 'main', message: 'started main' };
  await device.publishAsync(topics.device(DEVICE, 'events'), JSON.stringify(event), { qos: 1 });
  await waitFor('the telemetry stored', async () => {
    const logs = await http(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/logs`);
    const metrics = await http(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/metrics`);
    const events = await http(hub.httpUrl, 'GET', `/api/v1/events?device=${DEVICE}`);
    return logs.body?.lines?.length === 4 && metrics.body?.samples?.length === 2 && events.body?.events?.length === 1;
  });
});

afterEach(() => cleanup.run());

afterAll(async () => {
  if (device) await closeClient(device);
  await hub?.close();
});

describe('flotilla logs', SLOW, () => {
  it('prints the lines in order, prefixed app/container, stderr and system lines tagged', async () => {
    const result = await flotilla(['logs', DEVICE]);
    expect(result).toEqual({
      code: 0,
      stdout: [
        'gateway/main   | listening on :80',
        'gateway/main   | [stderr] upstream slow',
        'gateway/worker | job 1 done',
        'gateway/main   | [system] suppressed 3 lines',
        '',
      ].join('\n'),
      stderr: '',
    });
  });

  it('takes --tail and --since, shows timestamps with -t, and prints NDJSON with -o json', async () => {
    const tail = await flotilla(['logs', DEVICE, 'gateway', '--since', '10m', '--tail', '2', '-t']);
    expect(tail.code).toBe(0);
    expect(tail.stdout).toMatch(
      /^gateway\/worker \| \d{4}-\d\d-\d\dT[\d:.]+Z job 1 done\ngateway\/main {3}\| \S+Z \[system\] suppressed 3 lines\n$/,
    );

    const json = await flotilla(['logs', DEVICE, '--tail', '2', '-o', 'json']);
    expect(json.code).toBe(0);
    const records = json.stdout
      .trimEnd()
      .split('\n')
      .map((text) => JSON.parse(text));
    expect(records.map((r) => [r.device, r.container, r.stream, r.line])).toEqual([
      [DEVICE, 'worker', 'stdout', 'job 1 done'],
      [DEVICE, 'main', 'system', 'suppressed 3 lines'],
    ]);
  });

  it('-f prints a line published after it started, and ends with exit 0 on Ctrl-C', async () => {
    const follower = Follower.start(['logs', DEVICE, '-f', '--tail', '1'], hub.httpUrl);
    await follower.waitForOutput('suppressed 3 lines');
    await publishLogs(device, { seq: 2, lines: [line({ line: 'published while following', stream: 'stderr', ts: at(1) })] });
    await follower.waitForOutput('gateway/main | [stderr] published while following\n');
    follower.child.kill('SIGINT');
    expect(await follower.exited).toBe(0);
    expect(follower.stdout).toBe('gateway/main | [system] suppressed 3 lines\ngateway/main | [stderr] published while following\n');
    expect(follower.stderr).toBe('');
  });

  it('-f reports "hub closed the stream" and exits 1 when the hub goes away', async () => {
    const other = await startTestHub();
    cleanup.add('second hub', () => other.close());
    const client = await connectDevice(other, 'pi-2');
    cleanup.add('pi-2 client', () => closeClient(client));
    await publishLogs(client, { seq: 1, lines: [line({ line: 'before the hub stopped' })] }, 'pi-2');
    const follower = Follower.start(['logs', 'pi-2', '-f'], other.httpUrl);
    await follower.waitForOutput('before the hub stopped');
    // The backlog comes before the stream opens: a line published now shows once the follower is on the stream.
    await publishLogs(client, { seq: 2, lines: [line({ line: 'while following' })] }, 'pi-2');
    await follower.waitForOutput('while following');
    await closeClient(client);
    await other.close();
    expect(await follower.exited).toBe(1);
    expect(follower.stderr).toMatch(/^error: hub closed the stream/);
  });

  it('exits 3 for an unknown device and 2 for a bad --since or --tail', async () => {
    const unknown = await flotilla(['logs', 'no-such-device']);
    expect(unknown.code).toBe(3);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/^error: .*no-such-device/);

    const unknownFollow = await flotilla(['logs', 'no-such-device', '-f']);
    expect(unknownFollow.code).toBe(3);

    const since = await flotilla(['logs', DEVICE, '--since', 'yesterday']);
    expect(since.code).toBe(2);
    expect(since.stderr).toMatch(/^error: .*since/);

    const tail = await flotilla(['logs', DEVICE, '--tail', '-3']);
    expect(tail.code).toBe(2);
  });
});

describe('flotilla events', SLOW, () => {
  it('lists events as a table, or the hub body with -o json', async () => {
    const table = await flotilla(['events', DEVICE]);
    expect(table.code).toBe(0);
    const [header, row, ...rest] = table.stdout.split('\n');
    expect(header).toMatch(/^TIME\s+DEVICE\s+TYPE\s+APP\s+MESSAGE$/);
    expect(row).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {3}pi-1 +started {3}gateway\/main {3}started main$/);
    expect(rest).toEqual(['']);

    const json = await flotilla(['events', '-o', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).events).toEqual([expect.objectContaining({ device: DEVICE, type: 'started', message: 'started main' })]);
  });

  it('-f prints an event published after it started', async () => {
    const follower = Follower.start(['events', '-f', '-o', 'json'], hub.httpUrl);
    await follower.waitForOutput('started main');
    const event: DeviceEvent = { seq: 2, ts: at(0), type: 'health-passed', app: 'gateway', message: 'healthy after 2s' };
    await device.publishAsync(topics.device(DEVICE, 'events'), JSON.stringify(event), { qos: 1 });
    await follower.waitForOutput('healthy after 2s');
    follower.child.kill('SIGINT');
    expect(await follower.exited).toBe(0);
    const lines = follower.stdout
      .trimEnd()
      .split('\n')
      .map((text) => JSON.parse(text));
    expect(lines.map((e) => e.type)).toEqual(['started', 'health-passed']);
  });
});

describe('flotilla top devices', SLOW, () => {
  it("--once shows the device's CPU, memory and disk, and what its link carried", async () => {
    const result = await flotilla(['top', 'devices', '--once']);
    expect(result.code).toBe(0);
    const [header, row] = result.stdout.split('\n');
    expect(header).toMatch(/^DEVICE\s+ONLINE\s+CPU%\s+LOAD\s+MEM\s+DISK\s+TEMP\s+CONTAINERS\s+AGE\s+LINK IN\/OUT\s+LINK\/DAY$/);
    // Link bytes only for an agent's connection (a will on its own status topic); per day only after a minute of counting.
    expect(row).toMatch(
      /^pi-1\s+yes\s+23\.5\s+0\.75\s+512\.0 MiB\/2\.0 GiB\s+3\.0 GiB\/16\.0 GiB\s+51\.5°C\s+1\s+\d+s\s+(-|\d+(\.\d)? (B|KiB)\/\d+(\.\d)? (B|KiB))\s+-$/,
    );
  });
});

describe('flotilla metrics', SLOW, () => {
  it('lists the samples with network rates and the newest per-container usage', async () => {
    const result = await flotilla(['metrics', DEVICE]);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^TIME\s+CPU%\s+LOAD\s+MEM\s+DISK\s+TEMP\s+NET RX\/TX$/);
    expect(lines[1]).toMatch(/^\S+Z\s+23\.5\s+0\.75\s+512\.0 MiB\/2\.0 GiB\s+3\.0 GiB\/16\.0 GiB\s+51\.5°C\s+-$/);
    expect(lines[2]).toMatch(/\s1\.0 KiB\/s \/ 0 B\/s$/);
    expect(result.stdout).toMatch(/\nContainers at \S+Z:\nAPP\s+CONTAINER\s+CPU%\s+MEM\s+NET RX\/TX\s+BLOCK I\/O\s+PIDS\s+RESTARTS\n/);
    expect(result.stdout).toMatch(/\ngateway\s+main\s+4\.5\s+48\.0 MiB\/128\.0 MiB\s+4\.0 KiB\/2\.0 KiB\s+0 B\/8\.0 KiB\s+5\s+0\n/);

    const json = await flotilla(['metrics', DEVICE, '--tail', '1', '-o', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ device: DEVICE, samples: [{ seq: 2, host: { netRxBytes: 10_240 } }] });
  });

  it('exits 3 for an unknown device', async () => {
    const result = await flotilla(['metrics', 'no-such-device']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^error: /);
  });
});
