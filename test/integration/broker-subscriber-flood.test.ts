/**
 * A telemetry flood to dashboards that stop reading, or whose connection dies
 * mid-write, must not take the hub down or hold up anyone else.
 *
 * Stock Aedes 1.2 (broker/mqtt/subscriber-limits.ts has the details): one
 * subscriber that stops reading holds every in-flight message until its
 * drain times out (30 s), so no other subscriber receives anything meanwhile,
 * while QoS 1 publishers fill the broker's queue; when that subscriber's
 * socket is then reset, unwinding the queue overflows the stack and the hub
 * exits. And a persistent session keeps every QoS 1 message for a client
 * that never returns.
 *
 * The hub runs as a child process (`flotilla server`): a crash is the process
 * exiting, and the memory measured is the hub's own.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Cleanup } from '../support/cleanup.js';
import { logLine, metricsSample } from '../support/fixtures.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { frame, str } from '../support/mqtt-frame.js';
import { freePort } from '../support/ports.js';
import { type ManagedProcess, spawnCli } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const ROOT = 'flotilla/v1/devices';
const DASHBOARD = { username: 'wall', password: 'correct horse' };
const TELEMETRY = [`${ROOT}/+/metrics`, `${ROOT}/+/logs`];
const MiB = 1024 * 1024;
/** The longest a healthy subscriber may go without a message while devices flood (stock Aedes: ~30 s). */
const MAX_GAP_MS = 2_000;
/** The hub cuts a subscriber off once it has 4 MiB unsent; a few deliveries may be under way as it does. */
const MAX_BUFFERED_AT_CUT_OFF = 5 * MiB;
/**
 * What the hub's memory may grow by in the first test (flood, ingest, two
 * stuck subscribers): about 50 MiB measured.
 */
const MAX_RSS_GROWTH = 100 * MiB;

describe('a telemetry flood to subscribers that stop reading or vanish', () => {
  const hubCleanup = new Cleanup();
  const cleanup = new Cleanup();
  let hub: ManagedProcess;
  let ports: { mqtt: number; ws: number; http: number };
  const mqttUrl = () => `mqtt://127.0.0.1:${ports.mqtt}`;
  const wsUrl = () => `ws://127.0.0.1:${ports.ws}`;
  const httpUrl = () => `http://127.0.0.1:${ports.http}`;

  beforeAll(async () => {
    ports = { mqtt: await freePort(), ws: await freePort(), http: await freePort() };
    const dataDir = scratchDir('flotilla-flood-');
    hub = spawnCli('hub', [
      'server',
      ...['--data-dir', dataDir, '--host', '127.0.0.1'],
      ...['--mqtt-port', `${ports.mqtt}`, '--ws-port', `${ports.ws}`, '--http-port', `${ports.http}`],
      ...['--dashboard-user', `${DASHBOARD.username}:${DASHBOARD.password}`],
    ]);
    hubCleanup.add('hub', () => hub.stop());
    await waitFor(
      'the hub to answer /healthz',
      async () => {
        if (!hub.running) throw new Error(`hub exited: ${hub.output.slice(-2000)}`);
        return (await fetch(`${httpUrl()}/healthz`)).ok;
      },
      { timeoutMs: 30_000 },
    );
  });
  afterEach(() => cleanup.run());
  afterAll(() => hubCleanup.run());

  async function client(url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
    const c = await connectClient(url, { keepalive: 0, ...options });
    cleanup.add('client', () => closeClient(c));
    return c;
  }

  /** A dashboard that reads everything it is sent (mqtt.js, read-only account). */
  async function healthyDashboard(url: string): Promise<Watch> {
    const c = await client(url, DASHBOARD);
    const watch = new Watch(c);
    await c.subscribeAsync(TELEMETRY, { qos: 1 });
    return watch;
  }

  /** `flotilla_mqtt_clients_connected` from the hub's /metrics. */
  async function connectedClients(): Promise<number> {
    const text = await (await fetch(`${httpUrl()}/metrics`)).text();
    return Number(/^flotilla_mqtt_clients_connected (\d+)$/m.exec(text)?.[1]);
  }

  function expectRunning(): void {
    expect(hub.running, `hub exited: ${hub.output.slice(-2000)}`).toBe(true);
  }

  /** Still up and serving: /healthz answers, and a fresh client connects, subscribes and receives. */
  async function expectServing(): Promise<void> {
    expectRunning();
    expect((await fetch(`${httpUrl()}/healthz`)).status).toBe(200);
    const fresh = await client(mqttUrl());
    await fresh.subscribeAsync(`${ROOT}/dev-fresh/metrics`, { qos: 1 });
    const received = new Promise<string>((resolve) => fresh.once('message', (topic) => resolve(topic)));
    const device = await client(mqttUrl(), { clientId: 'dev-fresh' });
    await device.publishAsync(`${ROOT}/dev-fresh/metrics`, JSON.stringify(metricsSample(1)), { qos: 1 });
    expect(await received).toBe(`${ROOT}/dev-fresh/metrics`);
  }

  it('cuts off a dashboard that stops reading (TCP and WebSocket) after a bounded backlog, while the others keep receiving', async () => {
    const healthy = [await healthyDashboard(mqttUrl()), await healthyDashboard(wsUrl())];
    const connectedBefore = await connectedClients();
    const stuckTcp = await rawTcpSubscriber(ports.mqtt, 'stuck-tcp');
    cleanup.add('stuck tcp', () => stuckTcp.destroy());
    const stuckWs = await rawWsSubscriber(wsUrl(), 'stuck-ws');
    cleanup.add('stuck ws', () => stuckWs.terminate());

    const baseline = rssBytes(hub);
    let peak = baseline;
    const sampler = setInterval(() => {
      if (hub.running) peak = Math.max(peak, rssBytes(hub));
    }, 100);
    cleanup.add('sampler', () => clearInterval(sampler));
    const flood = await startFlood(mqttUrl(), cleanup);
    for (const watch of healthy) watch.reset();
    const cutOff = (clientId: string) =>
      hubLog(hub, 'not reading what it subscribed to').find((line) => line.clientId === clientId) as { bufferedBytes: number } | undefined;
    // Flood until both are cut off (stock Aedes: never, within 12 s), then 2 s more.
    await waitFor('both stuck subscribers to be cut off', () => cutOff('stuck-tcp') && cutOff('stuck-ws'), { timeoutMs: 12_000 }).catch(
      () => undefined,
    );
    await sleep(2_000);
    const published = flood.published();
    await flood.stop();
    clearInterval(sampler);

    expectRunning();
    for (const [name, clientId] of [
      ['TCP', 'stuck-tcp'],
      ['WebSocket', 'stuck-ws'],
    ] as const) {
      expect.soft(cutOff(clientId), `the stuck ${name} subscriber was cut off`).toBeDefined();
      expect
        .soft(cutOff(clientId)?.bufferedBytes, `bytes the hub held for the stuck ${name} subscriber`)
        .toBeLessThan(MAX_BUFFERED_AT_CUT_OFF);
    }
    for (const [i, watch] of healthy.entries()) {
      const stats = watch.stats();
      const what = `healthy ${i === 0 ? 'TCP' : 'WebSocket'} dashboard (${JSON.stringify(stats)}, ${published} published)`;
      expect.soft(stats.maxGapMs, `${what}: longest silence`).toBeLessThan(MAX_GAP_MS);
      expect.soft(stats.count, `${what}: received`).toBeGreaterThan(published * 0.8);
    }
    expect.soft(peak - baseline, `hub RSS grew from ${mib(baseline)} to ${mib(peak)} MiB`).toBeLessThan(MAX_RSS_GROWTH);

    // The hub closed them (reading again, they reach the end), and counts them no more.
    const closed = Promise.all([once(stuckTcp, 'close'), once(stuckWs, 'close')]);
    stuckTcp.resume();
    stuckWs.resume();
    await Promise.race([closed, sleep(10_000).then(() => Promise.reject(new Error('the hub did not close the stuck subscribers')))]);
    await waitFor('the stuck and the flooding clients to be gone', async () => (await connectedClients()) === connectedBefore, {
      timeoutMs: 5_000,
    });
    await expectServing();
  });

  it('survives the reset of a stuck sole subscriber to a QoS 1 flood (stock Aedes: stack overflow, the hub exits)', async () => {
    // A backend service's topic (device telemetry is acknowledged only once
    // stored, which paces it): the publisher sends the next message as soon
    // as the last is acknowledged.
    const topic = 'lab/bulk';
    const stuck = await rawTcpSubscriber(ports.mqtt, 'stuck-solo', { filters: [topic], anonymous: true });
    cleanup.add('stuck solo', () => stuck.destroy());
    const publisher = await client(mqttUrl(), { clientId: 'svc-solo' });
    const payload = 'z'.repeat(4096);
    let running = true;
    const publishing = (async () => {
      while (running) {
        await publisher.publishAsync(topic, payload, { qos: 1 }).catch(() => {
          running = false;
        });
      }
    })();
    cleanup.add('publisher', async () => {
      running = false;
      // Fails what is still unacknowledged (if the hub has gone, nothing else will).
      await publisher.endAsync(true);
      await publishing;
    });
    await sleep(5_000);
    stuck.resetAndDestroy();
    await sleep(1_500);
    expectRunning();
    running = false;
    await publishing;
    await expectServing();
  });

  it('keeps serving when subscribers die mid-flood: TCP FIN, TCP reset, WebSocket terminate; QoS 0 and 1, clean and persistent', async () => {
    const healthy = await healthyDashboard(wsUrl());
    const connectedBefore = await connectedClients();
    const flood = await startFlood(mqttUrl(), cleanup);
    healthy.reset();
    const ways = ['mqtt.js TCP destroy', 'raw TCP reset', 'raw WebSocket terminate', 'mqtt.js WebSocket destroy'] as const;
    for (let round = 0; round < 8; round++) {
      const way = ways[round % ways.length];
      const clientId = `vanishing-${round}`;
      const options = { clean: round % 3 !== 0, qos: (round % 2) as 0 | 1 };
      const receiveFor = 150 + (round % 4) * 100;
      if (way === 'raw TCP reset') {
        const socket = await rawTcpSubscriber(ports.mqtt, clientId, options);
        await sleep(receiveFor);
        socket.resetAndDestroy();
      } else if (way === 'raw WebSocket terminate') {
        const ws = await rawWsSubscriber(wsUrl(), clientId, options);
        await sleep(receiveFor);
        ws.terminate();
      } else {
        const url = way === 'mqtt.js TCP destroy' ? mqttUrl() : wsUrl();
        const c = await connectClient(url, { ...DASHBOARD, clientId, clean: options.clean, keepalive: 0 });
        c.on('error', () => undefined);
        await c.subscribeAsync(TELEMETRY, { qos: options.qos });
        await sleep(receiveFor);
        c.stream.destroy();
        await closeClient(c);
      }
    }
    await sleep(500);
    await flood.stop();

    expectRunning();
    const stats = healthy.stats();
    expect(stats.maxGapMs, `healthy dashboard: longest silence (${JSON.stringify(stats)})`).toBeLessThan(MAX_GAP_MS);
    await waitFor('the vanished clients to be gone', async () => (await connectedClients()) === connectedBefore, { timeoutMs: 5_000 });
    await expectServing();
  });

  it('keeps at most 1000 messages for a persistent dashboard session whose connection died', async () => {
    const topic = `${ROOT}/dev-ghost/logs`;
    const session = { ...DASHBOARD, clientId: 'ghost-dashboard', clean: false, keepalive: 0 };
    const ghost = await client(wsUrl(), session);
    await ghost.subscribeAsync(topic, { qos: 1 });
    ghost.stream.destroy();
    await closeClient(ghost);
    await sleep(300);

    const device = await client(mqttUrl(), { clientId: 'dev-ghost' });
    await Promise.all(
      Array.from({ length: 1500 }, (_, i) =>
        device.publishAsync(topic, JSON.stringify({ seq: i + 1, lines: [logLine(`line ${i + 1}`)] }), { qos: 1 }),
      ),
    );

    // The dashboard comes back to its session, listening before the CONNACK
    // that what was kept for it follows at once.
    const seqs: number[] = [];
    const back = mqtt.connect(wsUrl(), { ...session, protocolVersion: 4, reconnectPeriod: 0 });
    cleanup.add('client', () => closeClient(back));
    back.on('message', (_topic, payload) => seqs.push((JSON.parse(payload.toString()) as { seq: number }).seq));
    await waitFor('the kept messages', () => seqs.length >= 1000, { timeoutMs: 10_000 });
    await sleep(500);
    expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(hubLog(hub, 'persistent MQTT session is full').map((line) => line.clientId)).toContain('ghost-dashboard');
    await expectServing();
  });
});

/** When each message arrived at one subscriber: how many, and the longest silence. */
class Watch {
  private count = 0;
  private last = 0;
  private maxGap = 0;
  private since = performance.now();

  constructor(client: MqttClient) {
    client.on('message', () => {
      const now = performance.now();
      this.maxGap = Math.max(this.maxGap, now - this.last);
      this.last = now;
      this.count += 1;
    });
  }

  reset(): void {
    this.count = 0;
    this.maxGap = 0;
    this.since = performance.now();
    this.last = this.since;
  }

  stats(): { count: number; maxGapMs: number; seconds: number } {
    const now = performance.now();
    return {
      count: this.count,
      maxGapMs: Math.round(Math.max(this.maxGap, now - this.last)),
      seconds: Math.round((now - this.since) / 100) / 10,
    };
  }
}

/**
 * Four devices, each sending log batches of 16 KiB (QoS 1) eight at a time,
 * the next eight as soon as the hub has acknowledged them, and a metrics
 * sample (QoS 0) with each eight; and a fifth sending one batch at a time
 * (which stock Aedes keeps reading from while delivery is stalled).
 */
async function startFlood(url: string, cleanup: Cleanup) {
  const ids = ['dev-1', 'dev-2', 'dev-3', 'dev-4', 'dev-5'];
  const devices = await Promise.all(ids.map((clientId) => connectClient(url, { clientId })));
  const padding = 'x'.repeat(16 * 1024);
  let seq = 0;
  let published = 0;
  let running = true;
  const loops = devices.map(async (device, i) => {
    while (running) {
      seq += 1;
      device.publish(`${ROOT}/${ids[i]}/metrics`, JSON.stringify(metricsSample(seq)), { qos: 0 });
      const logs = Array.from({ length: i === 4 ? 1 : 8 }, () => {
        seq += 1;
        return device.publishAsync(`${ROOT}/${ids[i]}/logs`, JSON.stringify({ seq, lines: [logLine(padding)] }), { qos: 1 });
      });
      await Promise.all(logs).catch(() => {
        running = false;
      });
      published += 1 + logs.length;
    }
  });
  let stopped: Promise<void> | undefined;
  const stop = () => {
    running = false;
    // endAsync also fails what is unacknowledged, should the hub be gone.
    stopped ??= Promise.all(devices.map((device) => device.endAsync(true))).then(() => Promise.all(loops).then(() => undefined));
    return stopped;
  };
  cleanup.add('flood', stop);
  return { stop, published: () => published };
}

interface RawOptions {
  clean?: boolean;
  qos?: 0 | 1;
  filters?: string[];
  /** Connect without a username (a device or service) instead of as the dashboard user. */
  anonymous?: boolean;
}

/** CONNECT (keepalive 0), then SUBSCRIBE (to the telemetry filters by default). */
function connectAndSubscribe(clientId: string, { clean = true, qos = 1, filters = TELEMETRY, anonymous = false }: RawOptions): Buffer[] {
  const credentials = anonymous ? [] : [str(DASHBOARD.username), str(DASHBOARD.password)];
  const flags = (anonymous ? 0 : 0x80 | 0x40) | (clean ? 0x02 : 0);
  const connect = frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, flags, 0, 0]), str(clientId), ...credentials]));
  const subscribe = frame(0x82, Buffer.concat([Buffer.from([0, 1]), ...filters.flatMap((f) => [str(f), Buffer.from([qos])])]));
  return [connect, subscribe];
}

/** Whether `bytes` (the start of what the broker sent) holds a SUBACK. */
function hasSuback(bytes: Buffer): boolean {
  let at = 0;
  while (at < bytes.length) {
    const type = bytes.readUInt8(at) >> 4;
    let length = 0;
    let multiplier = 1;
    let i = at + 1;
    for (; i < bytes.length; i++) {
      const byte = bytes.readUInt8(i);
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if ((byte & 0x80) === 0) break;
    }
    if (i >= bytes.length) return false;
    if (type === 9) return true;
    at = i + 1 + length;
  }
  return false;
}

/** A TCP subscriber that subscribes, then stops reading (its socket stays open). */
async function rawTcpSubscriber(port: number, clientId: string, options: RawOptions = {}): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  for (const packet of connectAndSubscribe(clientId, options)) socket.write(packet);
  let received = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!hasSuback(received)) return;
      socket.off('data', onData);
      socket.pause();
      resolve();
    };
    socket.on('data', onData);
  });
  return socket;
}

/** The same over MQTT-over-WebSocket: `pause()` stops reading the underlying socket. */
async function rawWsSubscriber(url: string, clientId: string, options: RawOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, 'mqtt');
  ws.on('error', () => undefined);
  await once(ws, 'open');
  for (const packet of connectAndSubscribe(clientId, options)) ws.send(packet);
  let received = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    const onMessage = (data: Buffer) => {
      received = Buffer.concat([received, data]);
      if (!hasSuback(received)) return;
      ws.off('message', onMessage);
      ws.pause();
      resolve();
    };
    ws.on('message', onMessage);
  });
  // Reading again later drains what is buffered, and so reaches the close.
  ws.on('message', () => undefined);
  return ws;
}

/** The hub's JSON log lines whose message contains `text`. */
function hubLog(hub: ManagedProcess, text: string): Record<string, unknown>[] {
  return hub.output
    .split('\n')
    .filter((line) => line.includes(text))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** Resident memory of the hub process (Linux). */
function rssBytes(hub: ManagedProcess): number {
  const status = readFileSync(`/proc/${hub.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

function mib(bytes: number): number {
  return Math.round(bytes / MiB);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
