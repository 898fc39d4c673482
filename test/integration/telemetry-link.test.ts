/**
 * Telemetry on a device's link, with a real hub and a real agent (over the
 * simulator's in-memory runtime) connected through a tap that keeps what
 * went on the wire:
 * - a new hub and agent agree on compression, the batch crosses the wire
 *   compressed, and the hub's store, `flotilla logs` and a plain MQTT
 *   subscriber all get the very lines, as plain JSON;
 * - an older hub (offers no encoding) and an agent with encoding off both
 *   get plain JSON on the wire, and everything still works;
 * - live metrics samples cross as deltas against a whole one between whole
 *   ones, and every subscriber gets every sample whole; a delta whose base
 *   the hub does not hold is dropped until the next whole sample;
 * - a corrupted encoded payload is acknowledged, dropped, counted and
 *   logged, relayed to nobody, and the connection and the hub go on;
 * - the hub's per-device byte counters equal the bytes the tap forwarded,
 *   and Prometheus shows them;
 * - while someone follows a device's logs its lines arrive within a second
 *   although its own batch window is several; after, the long window is back.
 */
import { crc32 } from 'node:zlib';
import type { MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogBatch, LogRecord, MetricsResult } from '../../shared/index.js';
import { type Metrics, Metrics as MetricsSchema, validate } from '../../shared/index.js';
import { DEFLATE_BASE_1_TAG, DEFLATE_DICT_1_TAG, encodeTelemetryPayload, METRIC_BASE_EVERY } from '../../shared/telemetry-encoding.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState, metricsSample } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { runCli } from '../support/processes.js';
import { type Fleet, type SimDevice, startFleet } from '../support/sim/fleet.js';
import { waitFor } from '../support/wait.js';
import { startWireTap, type WireTap } from '../support/wire-tap.js';

const DEVICE = 'link-0';
const LOGS_TOPIC = `flotilla/v1/devices/${DEVICE}/logs`;
const METRICS_TOPIC = `flotilla/v1/devices/${DEVICE}/metrics`;

/** The PUBLISH packets in a captured client → broker stream. */
function publishes(stream: Buffer): { topic: string; payload: Buffer; qos: number }[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const out: { topic: string; payload: Buffer; qos: number }[] = [];
  parser.on('packet', (packet) => {
    if (packet.cmd === 'publish') out.push({ topic: packet.topic, payload: Buffer.from(packet.payload), qos: packet.qos });
  });
  parser.parse(stream);
  return out;
}

describe('telemetry on the link', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  interface Setup {
    hub: TestHub;
    tap: WireTap;
    device: SimDevice;
    agentLogs: LogCapture;
    /** The running container's id in the simulated engine. */
    containerId: string;
  }

  async function setUp(options: { hubEncodings?: string[]; agent?: Record<string, unknown> } = {}): Promise<Setup> {
    const hub: TestHub = cleanup.add(
      'hub',
      () => hub.close(),
      await startTestHub(options.hubEncodings ? { deps: { telemetryEncodings: options.hubEncodings } } : {}),
    );
    const tap: WireTap = cleanup.add('tap', () => tap.close(), await startWireTap(hub.hub.ports.mqtt));
    const agentLogs = new LogCapture('info');
    const fleet: Fleet = cleanup.add(
      'fleet',
      () => fleet.close(),
      await startFleet({
        hubUrl: tap.url,
        count: 1,
        idPrefix: 'link',
        logger: agentLogs.logger,
        // No sample (and so no flush with it) during a test: only the log window decides when lines go.
        agent: { stateIntervalMs: 50, metricsIntervalMs: 600_000, logBatchMs: 200, ...options.agent },
      }),
    );
    const device = fleet.device(DEVICE);
    const applied = await http(hub.httpUrl, 'POST', '/api/v1/apps', {
      name: 'ticker',
      scheduling: { devices: [DEVICE] },
      spec: { containers: [{ name: 'main', image: 'registry.local/ticker:1.0' }] },
    });
    expect(applied.status).toBeLessThan(300);
    const containerId = await waitFor('the app running', () => device.runtime.containers().find((c) => c.state === 'running')?.id);
    return { hub, tap, device, agentLogs, containerId };
  }

  async function subscriber(hub: TestHub): Promise<Inbox> {
    const client: MqttClient = cleanup.add('subscriber', () => closeClient(client), await connectClient(hub.mqttUrl));
    const inbox = new Inbox(client);
    await client.subscribeAsync(LOGS_TOPIC, { qos: 1 });
    return inbox;
  }

  async function storedLines(hub: TestHub): Promise<string[]> {
    const res = await http<{ lines: LogRecord[] }>(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/logs?tail=1000`);
    expect(res.status).toBe(200);
    return res.body.lines.map((l) => l.line);
  }

  async function scrape(hub: TestHub): Promise<string> {
    const res = await fetch(`${hub.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  }

  /** The device's link bytes as `/api/v1/top` (what `flotilla top` shows) reports them. */
  async function topBytes(hub: TestHub, device: string): Promise<{ bytesIn: number; bytesOut: number } | undefined> {
    const res = await http<{ devices: { id: string; linkBytesIn?: number; linkBytesOut?: number }[] }>(hub.httpUrl, 'GET', '/api/v1/top');
    expect(res.status).toBe(200);
    const row = res.body.devices.find((d) => d.id === device);
    return row?.linkBytesIn === undefined || row.linkBytesOut === undefined
      ? undefined
      : { bytesIn: row.linkBytesIn, bytesOut: row.linkBytesOut };
  }

  function writeLines(setup: Setup, texts: string[]): void {
    for (const text of texts) setup.device.runtime.writeLog(setup.containerId, 'stdout', text);
  }

  /** What the subscriber got on the logs topic, as the batches' lines, in order. */
  function relayedLines(inbox: Inbox): string[] {
    return inbox.on(LOGS_TOPIC).flatMap((m) => (m.json as LogBatch).lines.map((l) => l.line));
  }

  it('compresses a batch for a hub that decodes it; the store, `flotilla logs` and a plain subscriber get the same lines as JSON', async () => {
    const setup = await setUp();
    await waitFor('the agent to use the encoding', () => setup.device.agent.link.telemetryEncoding === 'deflate-dict-1');
    const inbox = await subscriber(setup.hub);
    const texts = Array.from({ length: 12 }, (_, i) => `compressed sensor reading n=${i} level=info value=${(i * 47) % 100}`);
    writeLines(setup, texts);

    await waitFor('every line stored', async () => texts.every((t) => relayedLines(inbox).includes(t)) && (await storedLines(setup.hub)));
    expect((await storedLines(setup.hub)).filter((l) => l.startsWith('compressed'))).toEqual(texts);
    // Every relayed copy is the plain JSON a batch is, parsed and valid as one.
    const relayed = inbox.on(LOGS_TOPIC);
    for (const message of relayed) {
      expect(message.payload[0]).toBe('{'.charCodeAt(0));
      const batch = message.json as LogBatch;
      expect(message.payload.toString()).toBe(JSON.stringify(batch));
    }
    expect(relayedLines(inbox)).toEqual(texts);
    // On the wire, not one line's text in the clear: they crossed compressed.
    const wire = setup.tap.upstream().toString('latin1');
    for (const text of texts) expect(wire.includes(text)).toBe(false);

    const cli = await runCli(['--hub', setup.hub.httpUrl, 'logs', DEVICE, '--tail', '100']);
    expect(cli.code, cli.stderr).toBe(0);
    for (const text of texts) expect(cli.stdout).toContain(text);
  });

  it('sends plain JSON to an older hub, which offers no encoding, and the lines arrive all the same', async () => {
    const setup = await setUp({ hubEncodings: [] });
    const inbox = await subscriber(setup.hub);
    const texts = ['plain to an older hub n=1', 'plain to an older hub n=2'];
    writeLines(setup, texts);
    await waitFor('both lines relayed', () => texts.every((t) => relayedLines(inbox).includes(t)));
    expect(setup.device.agent.link.telemetryEncoding).toBeUndefined();
    expect((await storedLines(setup.hub)).filter((l) => l.startsWith('plain'))).toEqual(texts);
    const wire = setup.tap.upstream().toString('latin1');
    for (const text of texts) expect(wire).toContain(text);
  });

  it("serves an older agent, which ignores the hub's telemetry.link command and publishes plain JSON, as before", async () => {
    const hub: TestHub = cleanup.add('hub', () => hub.close(), await startTestHub());
    const inbox = await subscriber(hub);
    // An agent of an earlier release: a will on its status topic, its commands subscribed, plain JSON out.
    const will = {
      topic: `flotilla/v1/devices/${DEVICE}/status`,
      payload: Buffer.from('{"online":false,"at":"2026-12-05T06:00:00Z"}'),
      qos: 1 as const,
      retain: true,
    };
    const old: MqttClient = cleanup.add('old agent', () => closeClient(old), await connectClient(hub.mqttUrl, { clientId: DEVICE, will }));
    const commands = new Inbox(old);
    await old.subscribeAsync(`flotilla/v1/devices/${DEVICE}/commands`, { qos: 1 });
    const command = await commands.waitFor<{ type: string; args: { encodings: string[] } }>(`flotilla/v1/devices/${DEVICE}/commands`);
    expect(command).toMatchObject({ type: 'telemetry.link', args: { encodings: ['deflate-dict-1'] } });
    await old.publishAsync(`flotilla/v1/devices/${DEVICE}/state`, JSON.stringify(deviceState(DEVICE)), { qos: 1, retain: true });
    const batch = {
      seq: 1,
      lines: [{ app: 'a', container: 'main', stream: 'stdout', ts: new Date().toISOString(), line: 'from an older agent' }],
    };
    await old.publishAsync(LOGS_TOPIC, JSON.stringify(batch), { qos: 1 });
    await waitFor('the plain batch relayed', () => relayedLines(inbox).includes('from an older agent'));
    expect(inbox.on(LOGS_TOPIC)[0]!.payload.toString()).toBe(JSON.stringify(batch));
    await waitFor('the batch stored', async () => (await storedLines(hub)).includes('from an older agent'));
  });

  it('sends plain JSON with --telemetry-encoding off, even to a hub that offers compression', async () => {
    const setup = await setUp({ agent: { telemetryEncoding: 'off' } });
    const inbox = await subscriber(setup.hub);
    writeLines(setup, ['plain by choice n=1']);
    await waitFor('the line relayed', () => relayedLines(inbox).includes('plain by choice n=1'));
    expect(setup.device.agent.link.telemetryEncoding).toBeUndefined();
    expect(setup.tap.upstream().toString('latin1')).toContain('plain by choice n=1');
  });

  it('sends live samples as deltas between whole ones, and the store and every subscriber get each sample whole', async () => {
    const setup = await setUp({ agent: { metricsIntervalMs: 1_000 } });
    const client: MqttClient = cleanup.add('metrics subscriber', () => closeClient(client), await connectClient(setup.hub.mqttUrl));
    const inbox = new Inbox(client);
    await client.subscribeAsync(METRICS_TOPIC, { qos: 0 });
    await waitFor(
      'two whole samples and the deltas between them on the wire',
      () => {
        const tags = publishes(setup.tap.upstream())
          .filter((p) => p.topic === METRICS_TOPIC)
          .map((p) => p.payload[0]);
        return tags.filter((t) => t === DEFLATE_DICT_1_TAG).length >= 2 && tags;
      },
      { timeoutMs: 20_000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const wire = publishes(setup.tap.upstream()).filter((p) => p.topic === METRICS_TOPIC);
    const tags = wire.map((p) => p.payload[0]);
    // Whole first on the connection (once the hub said it decodes), then METRIC_BASE_EVERY - 1 deltas, and again.
    const encoded = tags.slice(tags.indexOf(DEFLATE_DICT_1_TAG));
    expect(encoded.slice(0, METRIC_BASE_EVERY + 1)).toEqual([
      DEFLATE_DICT_1_TAG,
      ...Array(METRIC_BASE_EVERY - 1).fill(DEFLATE_BASE_1_TAG),
      DEFLATE_DICT_1_TAG,
    ]);
    const size = (tag: number) => Math.max(...wire.filter((p) => p.payload[0] === tag).map((p) => p.payload.length));
    expect(size(DEFLATE_BASE_1_TAG)).toBeLessThan(size(DEFLATE_DICT_1_TAG));

    // Every sample that crossed the wire was stored, none lost to a delta; the subscriber got them whole and valid.
    const stored = await waitFor('every sample on the wire stored', async () => {
      const res = await http<{ samples: Metrics[] }>(setup.hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/metrics?tail=1000`);
      return res.body.samples.length >= wire.length && res.body.samples;
    });
    expect(stored).toHaveLength(wire.length);
    const received = inbox.on(METRICS_TOPIC).map((m) => m.json as Metrics);
    expect(received.length).toBeGreaterThanOrEqual(METRIC_BASE_EVERY);
    for (const sample of received) expect(validate(MetricsSchema, sample).ok).toBe(true);
    expect(received.map((m) => m.seq)).toEqual(stored.map((m) => m.seq).slice(-received.length));
  });

  it('drops a delta whose base the hub does not hold, quietly, and takes the deltas again after the next whole sample', async () => {
    const hub: TestHub = cleanup.add('hub', () => hub.close(), await startTestHub());
    const client: MqttClient = cleanup.add('subscriber', () => closeClient(client), await connectClient(hub.mqttUrl));
    const inbox = new Inbox(client);
    await client.subscribeAsync(METRICS_TOPIC, { qos: 0 });
    const device: MqttClient = cleanup.add('device', () => closeClient(device), await connectClient(hub.mqttUrl, { clientId: DEVICE }));
    const at = (n: number) => new Date(Date.now() - (10 - n) * 1000).toISOString();
    const [lostBase, orphan, base, delta] = [1, 2, 3, 4].map((n) => ({ seq: n, plain: json(metricsSample(n, { ts: at(n) })) }));
    const encode = (s: { plain: Buffer }, against?: { seq: number; plain: Buffer }) =>
      encodeTelemetryPayload(s.plain, 'deflate-dict-1', against);

    // The base of sample 2 never arrived (a lost QoS 0 sample).
    await device.publishAsync(METRICS_TOPIC, encode(orphan!, lostBase), { qos: 0 });
    await device.publishAsync(METRICS_TOPIC, encode(base!), { qos: 0 });
    await device.publishAsync(METRICS_TOPIC, encode(delta!, base), { qos: 0 });
    await waitFor('the delta after the whole sample', () => inbox.on(METRICS_TOPIC).length >= 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(inbox.on(METRICS_TOPIC).map((m) => m.payload.toString())).toEqual([base!.plain.toString(), delta!.plain.toString()]);
    // Expected after a lost sample or a hub restart: not a warning for every device.
    expect(hub.logs.matching('undecodable metrics message dropped')).toEqual([]);
    expect(device.connected).toBe(true);
  });

  it('acknowledges and drops a corrupted encoded payload, relays it to nobody, says why, and goes on', async () => {
    const hub: TestHub = cleanup.add('hub', () => hub.close(), await startTestHub());
    const inbox = await subscriber(hub);
    const device: MqttClient = cleanup.add('device', () => closeClient(device), await connectClient(hub.mqttUrl, { clientId: DEVICE }));
    const good = Buffer.from(
      JSON.stringify({
        seq: 2,
        lines: [{ app: 'a', container: 'main', stream: 'stdout', ts: new Date().toISOString(), line: 'after the bad one' }],
      }),
    );
    const encoded = encodeTelemetryPayload(good);
    expect(encoded[0]).toBe(DEFLATE_DICT_1_TAG);
    const corrupt = Buffer.from(encoded);
    corrupt[corrupt.length - 6]! ^= 0xff;
    const droppedBefore = metricValue(await scrape(hub), 'flotilla_telemetry_dropped_total');

    // QoS 1: the PUBACK comes (the device deletes it from its outbox, resending would not fix it) and the link stays up.
    await device.publishAsync(LOGS_TOPIC, corrupt, { qos: 1 });
    const warning = await hub.logs.waitFor('undecodable logs message dropped', (r) => r.deviceId === DEVICE);
    expect(warning.reason).toMatch(/^corrupt deflate-dict-1 telemetry payload \(\d+ bytes\): /);
    expect(metricValue(await scrape(hub), 'flotilla_telemetry_dropped_total')).toBe(droppedBefore + 1);

    await device.publishAsync(LOGS_TOPIC, encoded, { qos: 1 });
    await waitFor('the good batch relayed', () => relayedLines(inbox).includes('after the bad one'));
    expect(device.connected).toBe(true);
    // The bad one reached no subscriber: the only message is the good one, decoded.
    expect(inbox.on(LOGS_TOPIC).map((m) => m.payload.toString())).toEqual([good.toString()]);
    expect(crc32(inbox.on(LOGS_TOPIC)[0]!.payload)).toBe(crc32(good));
  });

  it("counts each device's MQTT bytes both ways, equal to what crossed the wire, and shows them in top, metrics and Prometheus", async () => {
    const setup = await setUp();
    writeLines(setup, ['counted n=1', 'counted n=2']);
    await waitFor('the lines stored', async () => (await storedLines(setup.hub)).includes('counted n=2'));
    // Settled: the counters and the tap agree once nothing is in flight (a state report or PUBACK may still be on its way).
    const counted = await waitFor('the counters to equal the tap', async () => {
      const bytes = await topBytes(setup.hub, DEVICE);
      return bytes && bytes.bytesIn === setup.tap.bytesUp() && bytes.bytesOut === setup.tap.bytesDown() && bytes;
    });
    expect(counted.bytesIn).toBeGreaterThan(500);
    expect(counted.bytesOut).toBeGreaterThan(100);
    // `flotilla metrics DEVICE` reads the same counters from the device's metrics query.
    const metrics = await http<MetricsResult>(setup.hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body.linkBytesIn).toBeGreaterThanOrEqual(counted.bytesIn);
    expect(metrics.body.linkBytesOut).toBeGreaterThanOrEqual(counted.bytesOut);
    // A client that is not an agent (no will on its own status topic) is not counted.
    const other: MqttClient = cleanup.add(
      'other',
      () => closeClient(other),
      await connectClient(setup.hub.mqttUrl, { clientId: 'dashboard-1' }),
    );
    await other.subscribeAsync('flotilla/v1/devices/+/state', { qos: 1 });
    await other.publishAsync('flotilla/v1/devices/dashboard-1/status', 'x', { qos: 1 }).catch(() => undefined);

    const text = await scrape(setup.hub);
    expect(text).toContain('# TYPE flotilla_device_link_bytes_total counter');
    expect(metricValue(text, `flotilla_device_link_bytes_total{device="${DEVICE}",direction="in"}`)).toBeGreaterThanOrEqual(
      counted.bytesIn,
    );
    expect(metricValue(text, `flotilla_device_link_bytes_total{device="${DEVICE}",direction="out"}`)).toBeGreaterThanOrEqual(
      counted.bytesOut,
    );
    expect(text).not.toContain('device="dashboard-1"');
  });

  it('sends lines within a second while someone follows the logs, though its own window is 5 s; after, the 5 s window is back', async () => {
    const setup = await setUp({ agent: { logBatchMs: 5_000 } });
    const follow = new AbortController();
    cleanup.add('follower', () => follow.abort());
    const res = await fetch(`${setup.hub.httpUrl}/api/v1/devices/${DEVICE}/logs?follow=true&tail=0`, { signal: follow.signal });
    expect(res.status).toBe(200);
    let received = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) received += decoder.decode(chunk);
    })().catch(() => undefined);
    await waitFor('the live window on the device', () => setup.device.agent.logs.batchMs === 250);
    // The live window's command says nothing of encodings: the link stays compressed.
    expect(setup.device.agent.link.telemetryEncoding).toBe('deflate-dict-1');

    const latencies: number[] = [];
    for (let i = 0; i < 3; i++) {
      const text = `followed line n=${i}`;
      const start = Date.now();
      writeLines(setup, [text]);
      await waitFor(`"${text}" at the follower`, () => received.includes(text), { timeoutMs: 4_000, intervalMs: 10 });
      latencies.push(Date.now() - start);
    }
    expect(Math.max(...latencies)).toBeLessThan(1_000);

    follow.abort();
    await reading;
    await waitFor('the long window back on the device', () => setup.device.agent.logs.batchMs === 5_000);
    expect(setup.device.agent.link.telemetryEncoding).toBe('deflate-dict-1');
    const start = Date.now();
    writeLines(setup, ['unfollowed line']);
    await waitFor('the unfollowed line stored', async () => (await storedLines(setup.hub)).includes('unfollowed line'), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    expect(Date.now() - start).toBeGreaterThan(4_000);
  });
});

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** The value of one exact series in a Prometheus text exposition (NaN when absent). */
function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}
