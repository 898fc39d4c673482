/**
 * The broker's size and rate limits on a real hub (real Aedes, MQTT.js and raw
 * TCP clients): a packet over --max-packet-size closes its connection before
 * it is read; a CONNECT is capped lower; a topic deeper than the level cap is
 * refused; a device message over its per-topic cap is acknowledged and
 * dropped (nothing delivered, nothing retained or stored, counted and
 * logged) while the connection stays; one address over its connection rate
 * is told to retry.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Cleanup } from '../support/cleanup.js';
import { deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { sampleValue, scrape } from '../support/prometheus.js';
import { waitFor } from '../support/wait.js';

const SLOW = { timeout: 60_000 };
const ROOT = 'flotilla/v1';

/** Resolves when the socket is closed by the other end (or errors), with the bytes it received. */
function closedBy(socket: Socket): Promise<Buffer> {
  const received: Buffer[] = [];
  socket.on('data', (chunk) => received.push(chunk));
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(received))));
}

function rawSocket(hub: TestHub): Promise<Socket> {
  const url = new URL(hub.mqttUrl);
  return new Promise((resolve, reject) => {
    const socket = connectTcp(Number(url.port), url.hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** An MQTT 3.1.1 CONNECT for `clientId`, clean session, no credentials. */
function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const body = Buffer.concat([
    Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c]),
    Buffer.from([id.length >> 8, id.length & 0xff]),
    id,
  ]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

/** A fixed header declaring `remaining` bytes (variable byte integer). */
function fixedHeader(type: number, remaining: number): Buffer {
  const bytes = [type];
  let n = remaining;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

describe('broker limits', SLOW, () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('closes a connection whose packet declares more than --max-packet-size before reading it, and a CONNECT over 64 KiB; others carry on', async () => {
    const hub: TestHub = cleanup.add(
      'hub',
      () => hub.close(),
      await startTestHub({ config: { maxPacketBytes: 128 * 1024 }, logLevel: 'warn' }),
    );
    const bystander: MqttClient = cleanup.add('bystander', () => closeClient(bystander), await connectClient(hub.mqttUrl));
    const inbox = new Inbox(bystander);
    await bystander.subscribeAsync(`${ROOT}/devices/+/events`, { qos: 1 });

    // A PUBLISH declaring 200 MiB: only its header is ever sent; the hub closes at once.
    const big = await rawSocket(hub);
    const bigClosed = closedBy(big);
    big.write(connectPacket('raw-big'));
    await waitFor('CONNACK', () => big.bytesRead >= 4);
    big.write(fixedHeader(0x30, 200 * 1024 * 1024));
    big.write(Buffer.alloc(1024));
    await bigClosed;
    await hub.logs.waitFor('MQTT packet over the size limit (--max-packet-size): connection closed', (r) => r.connect === false);

    // A first packet (CONNECT) of 100 KiB: over the CONNECT cap, closed before any authentication.
    const fat = await rawSocket(hub);
    const fatClosed = closedBy(fat);
    fat.write(fixedHeader(0x10, 100 * 1024));
    expect((await fatClosed).length).toBe(0);
    await hub.logs.waitFor('MQTT packet over the size limit (--max-packet-size): connection closed', (r) => r.connect === true);

    // MQTT.js sending a 200 KiB message is cut off too; one under the cap goes through.
    const sender: MqttClient = cleanup.add('sender', () => sender.end(true), await connectClient(hub.mqttUrl));
    const closed = new Promise<void>((resolve) => sender.once('close', () => resolve()));
    sender.publish('anything/else', Buffer.alloc(200 * 1024), { qos: 0 });
    await closed;
    const fine = await connectClient(hub.mqttUrl);
    cleanup.add('fine', () => closeClient(fine));
    const event = { seq: 1, ts: new Date().toISOString(), type: 'test', message: 'x'.repeat(60 * 1024) };
    await fine.publishAsync(`${ROOT}/devices/dev-ok/events`, JSON.stringify(event), { qos: 1 });
    await inbox.waitFor(`${ROOT}/devices/dev-ok/events`, (e) => e.seq === 1);
  });

  it('delivers a desired document over --max-packet-size: the cap is for what clients send, and the hub publishes in process', async () => {
    const hub: TestHub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { maxPacketBytes: 16 * 1024 } }));
    const device: MqttClient = cleanup.add(
      'device',
      () => closeClient(device),
      await connectClient(hub.mqttUrl, { clientId: 'dev-big-desired' }),
    );
    const inbox = new Inbox(device);
    await device.subscribeAsync(`${ROOT}/devices/dev-big-desired/desired`, { qos: 1 });
    // The hub schedules to devices it knows: this one reports first, as an agent does.
    await device.publishAsync(`${ROOT}/devices/dev-big-desired/state`, JSON.stringify(deviceState('dev-big-desired')), {
      qos: 1,
      retain: true,
    });
    const big = 'v'.repeat(40 * 1024);
    const app = {
      name: 'big',
      scheduling: { devices: ['dev-big-desired'] },
      spec: { containers: [{ name: 'server', image: 'registry.local/big:1', env: [{ name: 'BIG', value: big }] }] },
    };
    expect((await http(hub.httpUrl, 'POST', '/api/v1/apps', app)).status).toBe(200);
    const desired = await inbox.waitFor<{ apps: { name: string }[] }>(
      `${ROOT}/devices/dev-big-desired/desired`,
      (d) => d.apps.length === 1,
    );
    expect(JSON.stringify(desired).length).toBeGreaterThan(40 * 1024);
    expect(hub.logs.matching('MQTT packet over the size limit (--max-packet-size): connection closed')).toEqual([]);
  });

  it('over MQTT over WebSocket, closes a connection sending a message over twice --max-packet-size before ws has buffered it', async () => {
    const hub: TestHub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { maxPacketBytes: 128 * 1024 } }));
    const socket = new WebSocket(hub.wsUrl, 'mqtt');
    cleanup.add('ws', () => socket.terminate());
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    socket.send(Buffer.alloc(1024 * 1024));
    // 1009: "message too big" (RFC 6455 §7.4.1), from ws' maxPayload.
    expect(await closed).toBe(1009);
    const ok: MqttClient = cleanup.add('ok', () => closeClient(ok), await connectClient(hub.wsUrl));
    expect(ok.connected).toBe(true);
  });

  it('acknowledges and drops a device message over its topic cap: nothing delivered, retained or stored; the connection stays; counted and logged', async () => {
    const hub: TestHub = cleanup.add('hub', () => hub.close(), await startTestHub({ logLevel: 'warn' }));
    const watcher: MqttClient = cleanup.add('watcher', () => closeClient(watcher), await connectClient(hub.mqttUrl));
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(['#', `${ROOT}/devices/+/state`, `${ROOT}/devices/+/logs`], { qos: 1 });

    const device: MqttClient = cleanup.add('device', () => closeClient(device), await connectClient(hub.mqttUrl, { clientId: 'dev-big' }));
    let closed = false;
    device.on('close', () => {
      closed = true;
    });
    const stateTopic = `${ROOT}/devices/dev-big/state`;
    const small = { deviceId: 'dev-big', apps: [], at: new Date().toISOString(), note: 'kept' };
    await device.publishAsync(stateTopic, JSON.stringify(small), { qos: 1, retain: true });
    await inbox.waitFor(stateTopic);

    // 300 KiB of state (cap 256 KiB), retained; 800 KiB of logs (cap 768 KiB): both acknowledged (publishAsync resolves on PUBACK).
    await device.publishAsync(stateTopic, JSON.stringify({ ...small, note: 'x'.repeat(300 * 1024) }), { qos: 1, retain: true });
    const line = { app: 'web', container: 'server', stream: 'stdout', ts: new Date().toISOString(), line: 'y'.repeat(1000) };
    await device.publishAsync(`${ROOT}/devices/dev-big/logs`, JSON.stringify({ seq: 1, lines: Array(800).fill(line) }), { qos: 1 });
    // A topic over 512 characters on any topic: the same.
    await device.publishAsync(`junk/${'z'.repeat(600)}`, 'x', { qos: 1 });
    expect(closed).toBe(false);

    // The connection carries on: the next normal message arrives, and nothing of the dropped ones did before it.
    await device.publishAsync(
      `${ROOT}/devices/dev-big/events`,
      JSON.stringify({ seq: 2, ts: new Date().toISOString(), type: 'after', message: 'm' }),
      {
        qos: 1,
      },
    );
    await inbox.waitFor(`${ROOT}/devices/dev-big/events`, (e) => e.seq === 2);
    expect(inbox.messages.filter((m) => m.payload.length > 100 * 1024 || m.topic.length > 512)).toEqual([]);
    expect(inbox.on('$flotilla/dropped')).toEqual([]);

    // The retained state is the small one still, not the big one, nor cleared.
    const late: MqttClient = cleanup.add('late', () => closeClient(late), await connectClient(hub.mqttUrl));
    const lateInbox = new Inbox(late);
    await late.subscribeAsync(stateTopic, { qos: 1 });
    expect(await lateInbox.waitFor<typeof small>(stateTopic)).toMatchObject({ note: 'kept' });

    const { families } = await scrape(hub.httpUrl);
    const dropped = (labels: Record<string, string>) => sampleValue(families, 'flotilla_mqtt_messages_dropped_total', labels);
    expect(dropped({ channel: 'state', reason: 'payload_too_large' })).toBe(1);
    expect(dropped({ channel: 'logs', reason: 'payload_too_large' })).toBe(1);
    expect(dropped({ channel: 'other', reason: 'topic_too_long' })).toBe(1);
    expect(sampleValue(families, 'flotilla_telemetry_stored_total', { kind: 'logs' })).toBe(0);
    // Logged at most once a second: the first drop in full, the others counted into the next line.
    expect(hub.logs.matching('MQTT message over its limit acknowledged and dropped')[0]).toMatchObject({
      clientId: 'dev-big',
      channel: 'state',
      reason: 'payload_too_large',
      limit: 256 * 1024,
    });
  });

  it('refuses a topic deeper than 16 levels, and a filter longer than 512 characters, and keeps serving', async () => {
    const hub: TestHub = cleanup.add('hub', () => hub.close(), await startTestHub());
    const deep = Array.from({ length: 17 }, (_, i) => `l${i}`).join('/');
    const publisher: MqttClient = cleanup.add('publisher', () => publisher.end(true), await connectClient(hub.mqttUrl));
    const gone = new Promise<void>((resolve) => publisher.once('close', () => resolve()));
    publisher.publish(deep, 'x', { qos: 1 });
    await gone;
    const ok: MqttClient = cleanup.add('ok', () => closeClient(ok), await connectClient(hub.mqttUrl));
    await ok.subscribeAsync(Array.from({ length: 16 }, (_, i) => `l${i}`).join('/'), { qos: 0 });
    // A filter over 512 characters matches nothing anyone may publish: SUBACK failure, the connection stays.
    // MQTT.js rejects a SUBACK holding a failure; the packet is on the error.
    const granted = await ok.subscribeAsync([`long/${'x'.repeat(600)}`, 'short/+'], { qos: 1 }).then(
      (subs) => subs.map((g) => g.qos),
      (err: { packet?: { granted?: number[] } }) => err.packet?.granted,
    );
    expect(granted).toEqual([128, 1]);
    expect(ok.connected).toBe(true);
  });

  it('refuses one address over --max-connect-rate-per-address with "server unavailable"', async () => {
    const hub: TestHub = cleanup.add(
      'hub',
      () => hub.close(),
      await startTestHub({ config: { maxConnectRatePerAddress: 2 }, logLevel: 'warn' }),
    );
    // Burst 4 from 127.0.0.1, then 2/s: of 10 at once, about 6 are refused.
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        connectClient(hub.mqttUrl, { clientId: `burst-${i}` }).then((c) => cleanup.add(`c${i}`, () => closeClient(c), c)),
      ),
    );
    const refused = results.filter((r) => r.status === 'rejected');
    expect(results.length - refused.length).toBeGreaterThanOrEqual(4);
    expect(refused.length).toBeGreaterThanOrEqual(5);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 3 });
    await hub.logs.waitFor('refusing connections over the per-address rate (--max-connect-rate-per-address)');
    const { families } = await scrape(hub.httpUrl);
    expect(sampleValue(families, 'flotilla_mqtt_connections_total', { outcome: 'refused_per_address' })).toBe(refused.length);
  });
});
