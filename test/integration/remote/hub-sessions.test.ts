/**
 * The hub's remote-access relay end to end on a real hub that requires
 * credentials: real `ws` clients on its HTTP port, a device played by a real
 * MQTT.js client logged in with its own credentials (it answers session.open
 * and echoes what it gets), and what the opener, the device, other MQTT
 * clients, the audit trail, the device's events and /metrics then show.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket, { type ClientOptions } from 'ws';
import { type Command, Topics } from '../../../shared/index.js';
import {
  asBuffer,
  CHANNEL,
  decodeFrame,
  FRAME,
  type Frame,
  FrameSender,
  type SessionOpenArgs,
  type SessionRequest,
} from '../../../shared/remote/index.js';
import { adminKey, bearer, createAccount, registerDevice } from '../../support/auth.js';
import { Cleanup } from '../../support/cleanup.js';
import { makeTestCerts, type TestCerts } from '../../support/dev-certs.js';
import { http } from '../../support/http.js';
import { startTestHub, type TestHub } from '../../support/hub.js';
import { closeClient, connectClient, Inbox } from '../../support/mqtt-client.js';
import { parseMetrics, sampleValue } from '../../support/prometheus.js';
import { waitFor } from '../../support/wait.js';

const topics = new Topics();
const DEVICE = 'gw-1';
const execCat: SessionRequest = { kind: 'exec', app: 'web', command: ['cat'], tty: false, stdin: true };
const hostShell: SessionRequest = { kind: 'shell', tty: true };

type OpenAnswer = 'ok' | 'silent' | { code: string; message: string };

/** A device as the hub sees one: its own MQTT login, answering session.open, echoing stdin, exiting on EOF. */
class FakeDevice {
  readonly commands: Command[] = [];
  /** Frames received per session, in order. */
  readonly frames = new Map<string, Frame[]>();
  readonly senders = new Map<string, FrameSender>();
  answer: OpenAnswer = 'ok';
  exitCode = 0;

  constructor(
    readonly client: MqttClient,
    readonly id: string,
  ) {
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  static async connect(hub: TestHub, id: string, secret: string): Promise<FakeDevice> {
    const client = await connectClient(hub.mqttUrl, { clientId: id, username: id, password: secret });
    const device = new FakeDevice(client, id);
    await client.subscribeAsync([topics.device(id, 'commands'), topics.deviceSessions(id, 'down')], { qos: 1 });
    return device;
  }

  opens(): SessionOpenArgs[] {
    return this.commands.filter((c) => c.type === 'session.open').map((c) => c.args as unknown as SessionOpenArgs);
  }

  closes(): { sessionId: string; reason: string }[] {
    return this.commands.filter((c) => c.type === 'session.close').map((c) => c.args as { sessionId: string; reason: string });
  }

  send(sessionId: string, frame: Parameters<FrameSender['send']>[0]): void {
    this.senders.get(sessionId)?.send(frame);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = topics.parse(topic);
    if (parsed?.kind === 'session') {
      const decoded = decodeFrame(payload);
      if (!decoded.ok) return;
      const list = this.frames.get(parsed.sessionId) ?? [];
      list.push(decoded.frame);
      this.frames.set(parsed.sessionId, list);
      const { frame } = decoded;
      if (frame.type === FRAME.data) this.send(parsed.sessionId, { type: FRAME.data, channel: CHANNEL.stdio, data: frame.data });
      if (frame.type === FRAME.eof) this.send(parsed.sessionId, { type: FRAME.exit, channel: CHANNEL.session, code: this.exitCode });
      return;
    }
    const command = JSON.parse(payload.toString()) as Command;
    this.commands.push(command);
    if (command.type !== 'session.open' || this.answer === 'silent') return;
    const args = command.args as unknown as SessionOpenArgs;
    const reply =
      this.answer === 'ok'
        ? { commandId: command.id, ok: true, result: { sessionId: args.sessionId, container: 'web_main' } }
        : { commandId: command.id, ok: false, error: this.answer };
    if (this.answer === 'ok') {
      const up = topics.session(this.id, args.sessionId, 'up');
      this.senders.set(args.sessionId, new FrameSender((bytes) => this.client.publish(up, asBuffer(bytes), { qos: 0 })));
    }
    this.client.publish(topics.device(this.id, 'replies'), JSON.stringify(reply), { qos: 1 });
  }
}

/** A WebSocket client of the session endpoint: every message and the close, recorded. */
class Opener {
  readonly texts: Record<string, unknown>[] = [];
  readonly frames: Frame[] = [];
  closed: { code: number; at: number } | undefined;
  readonly sender: FrameSender;

  constructor(readonly ws: WebSocket) {
    this.sender = new FrameSender((bytes) => ws.send(bytes, { binary: true }));
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        const decoded = decodeFrame(data as Buffer);
        if (decoded.ok) this.frames.push(decoded.frame);
      } else this.texts.push(JSON.parse(data.toString()) as Record<string, unknown>);
    });
    ws.on('close', (code) => {
      this.closed = { code, at: Date.now() };
    });
  }

  static async open(
    base: string,
    deviceId: string,
    key: string | undefined,
    request: SessionRequest | string,
    options: ClientOptions = {},
  ) {
    const url = `${base}/api/v1/devices/${deviceId}/sessions`;
    const ws = new WebSocket(url, { ...options, ...(key === undefined ? {} : { headers: bearer(key) }) });
    const opener = new Opener(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(typeof request === 'string' ? request : JSON.stringify(request));
    return opener;
  }

  first(): Promise<Record<string, unknown>> {
    return waitFor('the hub answer', () => this.texts[0] ?? (this.closed ? { closedWithout: this.closed.code } : undefined), {
      timeoutMs: 15_000,
      intervalMs: 10,
    });
  }

  closedWith(timeoutMs = 5_000): Promise<number> {
    return waitFor('the socket to close', () => this.closed?.code, { timeoutMs, intervalMs: 10 });
  }

  close(): void {
    this.ws.close();
  }
}

describe('the remote-access relay', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let admin: string;
  let operator: string;
  let viewer: string;
  let device: FakeDevice;
  let certs: TestCerts;

  beforeAll(async () => {
    certs = await makeTestCerts();
  });

  async function audit(query = '') {
    const res = await http(hub.httpUrl, 'GET', `/api/v1/audit${query}`, undefined, bearer(admin));
    expect(res.status).toBe(200);
    return res.body.items as Record<string, unknown>[];
  }

  async function events(deviceId = DEVICE) {
    const res = await http(hub.httpUrl, 'GET', `/api/v1/events?device=${deviceId}`, undefined, bearer(admin));
    return (res.body.events as { type: string; message: string }[]) ?? [];
  }

  async function opener(
    key: string | undefined,
    request: SessionRequest | string,
    deviceId = DEVICE,
    { base = hub.httpUrl.replace('http:', 'ws:'), ...options }: ClientOptions & { base?: string } = {},
  ): Promise<Opener> {
    const o = await Opener.open(base, deviceId, key, request, options);
    cleanup.add('opener', () => o.ws.terminate());
    return o;
  }

  async function mqttAccount(name: string, key: string): Promise<{ client: MqttClient; inbox: Inbox; errors: Error[] }> {
    const client = await connectClient(hub.mqttUrl, { clientId: name, username: name, password: key });
    cleanup.add(`mqtt ${name}`, () => closeClient(client));
    const errors: Error[] = [];
    client.on('error', (err) => errors.push(err));
    return { client, inbox: new Inbox(client), errors };
  }

  beforeEach(async () => {
    hub = cleanup.add(
      'hub',
      () => hub.close(),
      await startTestHub({
        config: { allowAnonymous: false, ...certs.hubConfig },
        deps: { sessionTimings: { openTimeoutMs: 1500, pingIntervalMs: 200 } },
      }),
    );
    admin = adminKey(hub);
    operator = await createAccount(hub, 'ops', 'operator');
    viewer = await createAccount(hub, 'wall', 'viewer');
    const { secret } = await registerDevice(hub, DEVICE);
    device = await FakeDevice.connect(hub, DEVICE, secret);
    cleanup.add('device', () => closeClient(device.client));
  });
  afterEach(() => cleanup.run());

  it('opens an exec, relays frames both ways unchanged, ends on EXIT with 1000, and audits it with bytes and exit code', async () => {
    device.exitCode = 3;
    const o = await opener(operator, execCat);
    const ready = await o.first();
    expect(ready).toMatchObject({ type: 'opened', container: 'web_main', window: expect.any(Number) });
    const [open] = device.opens();
    expect(open).toEqual({ sessionId: ready.sessionId, request: execCat, window: ready.window, openedBy: 'ops' });

    o.sender.send({ type: FRAME.data, channel: CHANNEL.stdio, data: Buffer.from('hello') });
    o.sender.send({ type: FRAME.data, channel: CHANNEL.stdio, data: Buffer.from(' world!') });
    await waitFor('the echo', () => o.frames.length === 2, { intervalMs: 10 });
    expect(o.frames.map((f) => (f.type === FRAME.data ? f.data.toString() : f.type))).toEqual(['hello', ' world!']);
    expect(o.frames.map((f) => f.seq)).toEqual([0, 1]);
    o.sender.send({ type: FRAME.eof, channel: CHANNEL.stdio });
    expect(await o.closedWith()).toBe(1000);
    expect(o.frames.at(-1)).toMatchObject({ type: FRAME.exit, channel: 0, code: 3 });
    // The device got the opener's frames as sent: numbered from 0, in order.
    expect(device.frames.get(ready.sessionId as string)?.map((f) => [f.type, f.seq])).toEqual([
      [FRAME.data, 0],
      [FRAME.data, 1],
      [FRAME.eof, 2],
    ]);

    const [record] = await waitFor('the ended record', async () => {
      const items = await audit(`?device=${DEVICE}`);
      return items[0]?.outcome === 'exited' ? items : undefined;
    });
    expect(record).toMatchObject({
      actor: 'ops',
      device: DEVICE,
      kind: 'exec',
      what: 'exec in web: cat',
      outcome: 'exited',
      exitCode: 3,
      bytesUp: 12,
      bytesDown: 12,
      endedAt: expect.any(String),
    });
    const types = await waitFor('the session events', async () => {
      const list = (await events()).map((e) => e.type);
      return list.includes('session-ended') ? list : undefined;
    });
    expect(types).toEqual(expect.arrayContaining(['session-opened', 'session-ended']));
    const families = await scrapeWith(hub, admin);
    expect(sampleValue(families, 'flotilla_session_bytes_total', { direction: 'up' })).toBe(12);
    expect(sampleValue(families, 'flotilla_device_session_bytes_total', { device: DEVICE, direction: 'up' })).toBe(12);
    expect(sampleValue(families, 'flotilla_device_session_bytes_total', { device: DEVICE, direction: 'down' })).toBe(12);
    expect(sampleValue(families, 'flotilla_sessions_open')).toBe(0);
    // Nothing asked the device to close a session that ended by itself.
    expect(device.closes()).toEqual([]);
  });

  it('refuses a viewer, and an operator asking for a host shell, before asking the device; both audited as denied', async () => {
    const asViewer = await opener(viewer, execCat);
    expect(await asViewer.first()).toEqual({
      type: 'error',
      error: { code: 'forbidden', message: 'exec in web: cat needs role operator; wall is viewer' },
    });
    expect(await asViewer.closedWith()).toBe(4403);
    const shell = await opener(operator, hostShell);
    expect((await shell.first()).error).toMatchObject({ code: 'forbidden' });
    expect(await shell.closedWith()).toBe(4403);
    expect(device.commands).toEqual([]);
    const records = await audit();
    expect(records.map((r) => [r.actor, r.kind, r.outcome])).toEqual([
      ['ops', 'shell', 'denied'],
      ['wall', 'exec', 'denied'],
    ]);
    const denied = await waitFor('the denial events', async () => {
      const list = (await events()).filter((e) => e.type === 'session-denied');
      return list.length === 2 ? list : undefined;
    });
    expect(denied.map((e) => e.message).join('\n')).toContain('host shell: refused to ops');
  });

  it('answers a bad key, an unknown device, an offline device and a bad request with their codes', async () => {
    const bad = await opener('flotilla_nobody_xxxxxxxx', execCat);
    expect((await bad.first()).error).toMatchObject({ code: 'unauthorized' });
    expect(await bad.closedWith()).toBe(4401);
    const unknown = await opener(operator, execCat, 'gw-404');
    expect(await unknown.closedWith()).toBe(4404);
    await registerDevice(hub, 'gw-off');
    const offline = await opener(operator, execCat, 'gw-off');
    expect((await offline.first()).error).toMatchObject({ code: 'offline' });
    expect(await offline.closedWith()).toBe(4503);
    const invalid = await opener(operator, '{"kind":"exec"}');
    expect(await invalid.closedWith()).toBe(4400);
    expect(device.commands).toEqual([]);
  });

  it("ends the session with link_lost and 4504 at once when the device's connection drops", async () => {
    const o = await opener(operator, execCat);
    await o.first();
    const dropped = Date.now();
    device.client.stream.destroy();
    expect(await o.closedWith()).toBe(4504);
    expect(o.closed!.at - dropped).toBeLessThan(1000);
    expect(o.texts[1]).toMatchObject({ type: 'error', error: { code: 'link_lost' } });
    const [record] = await audit();
    expect(record).toMatchObject({ outcome: 'link_lost', kind: 'exec' });
  });

  it('tells the device to close the session when its opener leaves', async () => {
    const o = await opener(operator, execCat);
    const ready = await o.first();
    o.sender.send({ type: FRAME.data, channel: CHANNEL.stdio, data: Buffer.from('abc') });
    await waitFor('the echo', () => o.frames.length === 1, { intervalMs: 10 });
    o.close();
    const [close] = await waitFor('session.close', () => (device.closes().length > 0 ? device.closes() : undefined), { intervalMs: 10 });
    expect(close).toEqual({ sessionId: ready.sessionId, reason: 'the opener left' });
    const [record] = await waitFor('the closed record', async () => {
      const items = await audit();
      return items[0]?.outcome === 'closed' ? items : undefined;
    });
    expect(record).toMatchObject({ bytesUp: 3, bytesDown: 3, reason: 'the opener left' });
  });

  it("passes on the device's refusal, and times out (telling the device to close) when it does not answer", async () => {
    device.answer = { code: 'busy', message: 'at the limit of 8 sessions' };
    const busy = await opener(operator, execCat);
    expect(await busy.first()).toEqual({ type: 'error', error: { code: 'busy', message: 'at the limit of 8 sessions' } });
    expect(await busy.closedWith()).toBe(4429);

    device.answer = 'silent';
    const started = Date.now();
    const silent = await opener(operator, execCat);
    expect((await silent.first()).error).toMatchObject({ code: 'timeout' });
    expect(await silent.closedWith()).toBe(4408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    const sessionId = device.opens()[1]?.sessionId;
    await waitFor('session.close', () => device.closes().find((c) => c.sessionId === sessionId), { intervalMs: 10 });
    const records = await audit();
    expect(records.map((r) => r.outcome)).toEqual(['failed', 'failed']);
  });

  it("serves the same endpoint on the HTTPS port, to a client that pins the hub's CA", async () => {
    const o = await opener(operator, execCat, DEVICE, { base: `wss://127.0.0.1:${hub.hub.ports.https}`, ca: certs.ca });
    expect(await o.first()).toMatchObject({ type: 'opened' });
    o.sender.send({ type: FRAME.data, channel: CHANNEL.stdio, data: Buffer.from('over tls') });
    o.sender.send({ type: FRAME.eof, channel: CHANNEL.stdio });
    expect(await o.closedWith()).toBe(1000);
    expect(o.frames.map((f) => f.type)).toEqual([FRAME.data, FRAME.exit]);
  });

  it('drops an opener that stops answering pings, and tells the device to close its session', async () => {
    const o = await opener(operator, execCat, DEVICE, { autoPong: false });
    const ready = await o.first();
    // Pinged every 200 ms here: two missed pongs, then the hub lets it go.
    const [close] = await waitFor('session.close', () => (device.closes().length > 0 ? device.closes() : undefined), { intervalMs: 10 });
    expect(close).toEqual({ sessionId: ready.sessionId, reason: 'the opener stopped answering pings' });
    expect(await o.closedWith()).toBe(1006);
    expect((await audit())[0]).toMatchObject({ outcome: 'closed', reason: 'the opener stopped answering pings' });
  });

  it('ends every session when the hub stops: the opener is told, the device is sent session.close', async () => {
    const o = await opener(operator, execCat);
    const ready = await o.first();
    await hub.close();
    expect(await o.closedWith()).toBe(4500);
    expect(o.texts[1]).toEqual({ type: 'error', error: { code: 'failed', message: 'the hub is shutting down' } });
    expect(device.closes()).toEqual([{ sessionId: ready.sessionId, reason: 'the hub is shutting down' }]);
    const restarted = await hub.restart();
    cleanup.add('restarted hub', () => restarted.close());
    hub = restarted;
    expect((await audit())[0]).toMatchObject({ outcome: 'closed', reason: 'the hub is shutting down', endedAt: expect.any(String) });
  });

  it("keeps a session's topics from everyone but its device: nothing delivered, the attempts refused and audited", async () => {
    const o = await opener(operator, execCat);
    const ready = await o.first();
    const sessionId = ready.sessionId as string;
    const up = topics.session(DEVICE, sessionId, 'up');
    const down = topics.session(DEVICE, sessionId, 'down');

    // Another registered device, on gw-1's session topics.
    const { secret } = await registerDevice(hub, 'gw-2');
    const intruder = await connectClient(hub.mqttUrl, { clientId: 'gw-2', username: 'gw-2', password: secret });
    cleanup.add('gw-2', () => closeClient(intruder));
    const intruderInbox = new Inbox(intruder);
    expect(await granted(intruder, [topics.deviceSessions(DEVICE, 'down'), up])).toEqual([128, 128]);

    // An admin, on the real session id's topics and on everything.
    const root = await mqttAccount('admin', admin);
    expect(await granted(root.client, [up, down, topics.allSessions('up'), '#'])).toEqual([128, 128, 128, 0]);

    // Traffic both ways on the session reaches the opener and the device, and no one else;
    // the device's status, published after it, does reach the admin's `#`.
    o.sender.send({ type: FRAME.data, channel: CHANNEL.stdio, data: Buffer.from('secret') });
    await waitFor('the echo', () => o.frames.length === 1, { intervalMs: 10 });
    const status = topics.device(DEVICE, 'status');
    device.client.publish(status, JSON.stringify({ online: true, at: new Date().toISOString() }), { qos: 1 });
    await root.inbox.waitFor(status);

    // gw-2 publishing on gw-1's up topic, as if it were gw-1: refused, its connection closed.
    const forged = Buffer.from([FRAME.data, 0, 0, 0, 1, 0, 0, 0, 1, 0x41]);
    intruder.publish(up, forged, { qos: 0 });
    await waitFor('gw-2 disconnected', () => intruder.disconnected || intruder.disconnecting || !intruder.connected, { intervalMs: 10 });
    // The admin publishing on the down topic: refused the same way; the device never sees it.
    root.client.publish(down, forged, { qos: 0 });
    await waitFor('the admin disconnected', () => !root.client.connected, { intervalMs: 10 });

    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(o.frames).toHaveLength(1);
    expect(device.frames.get(sessionId)).toHaveLength(1);
    const sessionTraffic = (m: { topic: string }) => m.topic.includes('/sessions/');
    expect(intruderInbox.messages.filter(sessionTraffic)).toEqual([]);
    expect(root.inbox.messages.filter(sessionTraffic)).toEqual([]);

    const topicRecords = (await audit()).filter((r) => r.kind === 'topic');
    const seen = topicRecords.map((r) => [r.actor, r.what, r.outcome, r.device]);
    expect(seen).toEqual(
      expect.arrayContaining([
        ['device gw-2', `subscribe ${topics.deviceSessions(DEVICE, 'down')}`, 'denied', DEVICE],
        ['device gw-2', `subscribe ${up}`, 'denied', DEVICE],
        ['device gw-2', `publish ${up}`, 'denied', DEVICE],
        ['admin', `subscribe ${up}`, 'denied', DEVICE],
        ['admin', `subscribe ${topics.allSessions('up')}`, 'denied', '*'],
        ['admin', `publish ${down}`, 'denied', DEVICE],
      ]),
    );
    const denials = await waitFor('the denial events on both devices', async () => {
      const [own, other] = [await events(DEVICE), await events('gw-2')];
      const count = (list: { type: string }[]) => list.filter((e) => e.type === 'session-denied').length;
      return count(own) >= 6 && count(other) >= 3 ? { own, other } : undefined;
    });
    expect(denials.other.map((e) => e.message).join('\n')).toContain('device gw-2 was refused: publish');
  });
});

/** What the broker granted each filter (MQTT.js rejects a SUBACK with a refusal in it). */
function granted(client: MqttClient, filters: string[]): Promise<number[]> {
  return client.subscribeAsync(filters, { qos: 0 }).then(
    (grants) => grants.map((g) => g.qos),
    (err: Error & { packet?: { granted: number[] } }) => err.packet?.granted ?? [],
  );
}

/** /metrics, on a hub that asks for credentials there. */
async function scrapeWith(hub: TestHub, key: string) {
  const res = await fetch(`${hub.httpUrl}/metrics`, { headers: bearer(key) });
  expect(res.status).toBe(200);
  return parseMetrics(await res.text());
}
