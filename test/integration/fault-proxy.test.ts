/**
 * The fault proxy against a real Aedes broker and real MQTT.js clients: a
 * "device" connects through the proxy, an observer connects to the broker
 * directly, so every fault shows as what one side did or did not see.
 */
import { createConnection } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EmbeddedBroker, startBroker } from '../../broker/mqtt/broker.js';
import { Cleanup } from '../support/cleanup.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const UP = 'fp/up';
const DOWN = 'fp/down';

interface Device {
  client: MqttClient;
  inbox: Inbox;
  closes: number;
  errors: string[];
}

/** Tries an MQTT connect that must fail; returns why it failed. */
async function connectFails(url: string): Promise<Error> {
  try {
    // allowRetries false: a close before CONNACK rejects, instead of leaving the promise pending.
    const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 2_000 }, false);
    await closeClient(client);
  } catch (err) {
    return err as Error;
  }
  throw new Error(`an MQTT connect to ${url} succeeded; expected it to fail`);
}

describe('fault proxy between an MQTT client and Aedes', () => {
  const cleanup = new Cleanup();
  let broker: EmbeddedBroker;
  let proxy: FaultProxy;
  let observer: MqttClient;
  let observed: Inbox;

  beforeEach(async () => {
    broker = await startBroker({ host: '127.0.0.1', mqttPort: 0, wsPort: 0, logger: pino({ level: 'silent' }) });
    cleanup.add('broker', () => broker.close());
    proxy = await startFaultProxy({ targetHost: '127.0.0.1', targetPort: broker.mqttPort });
    cleanup.add('proxy', () => proxy.close());
    observer = await connectClient(`mqtt://127.0.0.1:${broker.mqttPort}`);
    cleanup.add('observer', () => closeClient(observer));
    observed = new Inbox(observer);
    await observer.subscribeAsync(UP, { qos: 1 });
  });
  afterEach(() => cleanup.run());

  async function device(options: IClientOptions = {}): Promise<Device> {
    const client = await connectClient(proxy.url, options);
    cleanup.add('device', () => closeClient(client));
    const d: Device = { client, inbox: new Inbox(client), closes: 0, errors: [] };
    // A cut arrives as ECONNRESET and a stalled link ends in "Keepalive timeout":
    // MQTT.js emits both as 'error', which throws where nobody listens.
    client.on('error', (err) => d.errors.push(err.message));
    client.on('close', () => {
      d.closes += 1;
    });
    await client.subscribeAsync(DOWN, { qos: 1 });
    return d;
  }

  it('forwards both ways and counts what it forwarded', async () => {
    const dev = await device();
    await dev.client.publishAsync(UP, JSON.stringify({ n: 1 }), { qos: 1 });
    await observed.waitFor(UP, (p) => p.n === 1, 2_000);
    await observer.publishAsync(DOWN, JSON.stringify({ n: 2 }), { qos: 1 });
    await dev.inbox.waitFor(DOWN, (p) => p.n === 2, 2_000);

    expect(proxy.connections).toBe(1);
    const stats = proxy.stats;
    expect(stats).toMatchObject({ accepted: 1, refused: 0, cuts: 0, bytesDropped: 0 });
    expect(stats.bytesUp).toBeGreaterThan(0);
    expect(stats.bytesDown).toBeGreaterThan(0);
  });

  it('cut() drops the link: the client sees close, and a message retained meanwhile arrives after reconnecting', async () => {
    const dev = await device();
    expect(proxy.cut()).toBe(1);
    await waitFor('the device to see the link close', () => dev.closes === 1, { timeoutMs: 2_000, intervalMs: 10 });
    expect(dev.client.connected).toBe(false);
    await waitFor('the broker to drop the device', () => broker.aedes.connectedClients === 1, { timeoutMs: 2_000, intervalMs: 10 });

    await observer.publishAsync(DOWN, JSON.stringify({ v: 2 }), { qos: 1, retain: true });
    dev.client.reconnect();
    await waitFor('the device to reconnect', () => dev.client.connected, { timeoutMs: 2_000, intervalMs: 10 });
    // MQTT.js resubscribes by itself only with reconnectPeriod > 0 (only then does it remember subscriptions).
    await dev.client.subscribeAsync(DOWN, { qos: 1 });
    const config = await dev.inbox.waitFor(DOWN, (p) => p.v === 2, 3_000);
    expect(config).toEqual({ v: 2 });
    expect(dev.inbox.on(DOWN)[0]?.retain).toBe(true);
    expect(proxy.stats).toMatchObject({ accepted: 2, cuts: 1 });
    expect(proxy.connections).toBe(1);
  });

  it('refuse() turns new connects away until up(), leaving open ones alone; down() also cuts those', async () => {
    const early = await device();
    proxy.refuse(true);
    await connectFails(proxy.url);
    expect(proxy.stats.refused).toBe(1);

    // The link that was already open still carries messages both ways.
    await early.client.publishAsync(UP, JSON.stringify({ n: 'early' }), { qos: 1 });
    await observed.waitFor(UP, (p) => p.n === 'early', 2_000);
    expect(early.closes).toBe(0);

    proxy.up();
    const late = await device();
    expect(late.client.connected).toBe(true);

    proxy.down();
    await waitFor('both devices to see the link close', () => early.closes === 1 && late.closes === 1, {
      timeoutMs: 2_000,
      intervalMs: 10,
    });
    await connectFails(proxy.url);
    expect(proxy.stats).toMatchObject({ refused: 2, cuts: 1 });
    proxy.up();
    await device();
  });

  it('stall(): a QoS 1 publish never arrives, the proxy closes nothing, and the client finds the dead link by its keepalive', async () => {
    const dev = await device({ keepalive: 1 });
    proxy.stall();
    const stalledAt = performance.now();
    dev.client.publishAsync(UP, JSON.stringify({ n: 'lost' }), { qos: 1 }).catch(() => undefined);

    await sleep(500);
    expect(observed.on(UP)).toHaveLength(0);
    // Both sockets are open: the client still thinks it is connected, and so does the broker.
    expect(dev.client.connected).toBe(true);
    expect(proxy.connections).toBe(1);
    expect(broker.aedes.connectedClients).toBe(2);

    await waitFor('the device to give up on the link', () => dev.closes === 1, { timeoutMs: 5_000, intervalMs: 10 });
    const gaveUpAfterMs = performance.now() - stalledAt;
    // MQTT.js gives up 1.5 keepalives after the last packet it received (the SUBACK, just before the stall).
    expect(gaveUpAfterMs).toBeGreaterThan(1_000);
    expect(dev.errors).toContain('Keepalive timeout');
    expect(proxy.stats.cuts).toBe(0);
    // The device's FIN was not passed on either: the broker finds out by its own keepalive (1.5 × 1 s).
    await waitFor('the broker to drop the device', () => broker.aedes.connectedClients === 1, { timeoutMs: 3_000, intervalMs: 10 });

    proxy.resume();
    await sleep(200);
    expect(observed.on(UP)).toHaveLength(0);
    expect(proxy.connections).toBe(0);
  });

  it('stall() discards what is sent meanwhile, and after resume() the same connection carries new messages', async () => {
    const dev = await device();
    proxy.stall();
    dev.client.publish(UP, JSON.stringify({ n: 1 }));
    await observer.publishAsync(DOWN, JSON.stringify({ n: 1 }));
    await sleep(300);
    expect(proxy.stats.bytesDropped).toBeGreaterThan(0);

    proxy.resume();
    dev.client.publish(UP, JSON.stringify({ n: 2 }));
    await observer.publishAsync(DOWN, JSON.stringify({ n: 2 }));
    await observed.waitFor(UP, (p) => p.n === 2, 2_000);
    await dev.inbox.waitFor(DOWN, (p) => p.n === 2, 2_000);
    // Nothing sent during the stall turned up late.
    expect(observed.on(UP).map((m) => m.json)).toEqual([{ n: 2 }]);
    expect(dev.inbox.on(DOWN).map((m) => m.json)).toEqual([{ n: 2 }]);
    expect(dev.closes).toBe(0);
    expect(proxy.stats.accepted).toBe(1);
  });

  it('stall() holds back a hang-up too, so the far side sees it only after resume()', async () => {
    const dev = await device();
    proxy.stall();
    await closeClient(dev.client);
    await sleep(300);
    // Like a dead NAT mapping: the broker (keepalive 60 s) still counts the device as connected.
    expect(broker.aedes.connectedClients).toBe(2);
    expect(proxy.connections).toBe(0);

    proxy.resume();
    await waitFor('the broker to see the device go', () => broker.aedes.connectedClients === 1, { timeoutMs: 2_000, intervalMs: 10 });
  });

  it('delay() holds every chunk in both directions by at least the delay, and keeps order when lowered', async () => {
    const dev = await device();
    proxy.delay(300);

    // PUBLISH up, PUBACK down: two delayed hops.
    let startedAt = performance.now();
    await dev.client.publishAsync(UP, JSON.stringify({ n: 0 }), { qos: 1 });
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(600);

    let arrivedAt = 0;
    dev.client.once('message', () => {
      arrivedAt = performance.now();
    });
    startedAt = performance.now();
    await observer.publishAsync(DOWN, JSON.stringify({ n: 'down' }), { qos: 1 });
    await dev.inbox.waitFor(DOWN, (p) => p.n === 'down', 2_000);
    expect(arrivedAt - startedAt).toBeGreaterThanOrEqual(300);

    // Messages sent after the delay is lifted must not overtake those still held.
    for (let n = 1; n <= 10; n++) dev.client.publish(UP, JSON.stringify({ n }));
    // The delay applies when a chunk reaches the proxy: let these get there first.
    await sleep(100);
    proxy.delay(0);
    for (let n = 11; n <= 20; n++) dev.client.publish(UP, JSON.stringify({ n }));
    await observed.waitFor(UP, (p) => p.n === 20, 2_000);
    expect(observed.on(UP).map((m) => (m.json as { n: number }).n)).toEqual(Array.from({ length: 21 }, (_, i) => i));

    startedAt = performance.now();
    await dev.client.publishAsync(UP, JSON.stringify({ n: 'fast' }), { qos: 1 });
    expect(performance.now() - startedAt).toBeLessThan(250);
  });

  it('flap() cuts again and again on the injected schedule, refuses during downMs, and stops when told', async () => {
    const dev = await device({ reconnectPeriod: 50 });
    // random() = 0: every up-time is minMs, so a cycle is 100 ms up + 100 ms down.
    const stop = proxy.flap({ minMs: 100, maxMs: 1_000, downMs: 100, random: () => 0 });
    await sleep(1_200);
    // Six cycles fit; Math.random() instead of the injected one would give about two.
    expect(proxy.stats.cuts).toBeGreaterThanOrEqual(4);
    expect(proxy.stats.refused).toBeGreaterThanOrEqual(1);
    expect(dev.closes).toBeGreaterThanOrEqual(3);

    stop();
    stop();
    const cutsAtStop = proxy.stats.cuts;
    await waitFor('the device to reconnect', () => dev.client.connected, { timeoutMs: 2_000, intervalMs: 10 });
    const closesAfterReconnect = dev.closes;
    await sleep(400);
    expect(proxy.stats.cuts).toBe(cutsAtStop);
    expect(dev.closes).toBe(closesAfterReconnect);
    await dev.client.publishAsync(UP, JSON.stringify({ n: 'after' }), { qos: 1 });
    await observed.waitFor(UP, (p) => p.n === 'after', 2_000);
  });

  it('a target that refuses gets the client connection closed, and the process survives it', async () => {
    const nowhere = await startFaultProxy({ targetPort: await freePort() });
    cleanup.add('proxy to nowhere', () => nowhere.close());
    const socket = createConnection({ host: '127.0.0.1', port: nowhere.port });
    cleanup.add('socket', () => socket.destroy());
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await expect(Promise.race([closed.then(() => 'closed'), sleep(1_000, 'still open')])).resolves.toBe('closed');
    expect(nowhere.stats.accepted).toBe(1);
    expect(nowhere.connections).toBe(0);
  });

  it('close() ends every connection and every timer, and can be called twice', async () => {
    const dev = await device();
    proxy.delay(50);
    proxy.flap({ minMs: 50, maxMs: 50 });
    await Promise.all([proxy.close(), proxy.close()]);
    await waitFor('the device to see the link close', () => dev.closes === 1, { timeoutMs: 2_000, intervalMs: 10 });
    expect(proxy.connections).toBe(0);
    await sleep(150);
    // The flap's timer died with the proxy.
    expect(proxy.stats.cuts).toBe(0);
    const refused = await connectFails(proxy.url);
    expect(refused.message).toMatch(/ECONNREFUSED/);
    await proxy.close();
  });
});
