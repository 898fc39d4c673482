/**
 * Replicas of the hub's broker on one private Redis (broker/mqtt/cluster.ts):
 * real Aedes brokers on loopback, real MQTT.js clients, a real redis-server.
 * What a device, a dashboard and a service see must not depend on which
 * replica each is connected to: retained desired state published through
 * one reaches a device on another (also while it was away, with a
 * persistent session), telemetry published on one reaches a subscriber on a
 * third, and a Redis restart pauses delivery without anyone restarting.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmbeddedBroker, startBroker } from '../../broker/mqtt/broker.js';
import { hubBus } from '../../broker/mqtt/hub-bus.js';
import { Cleanup } from '../support/cleanup.js';
import { emitterReceivers } from '../support/emitter-receivers.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { type RedisServer, startRedis } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

describe('broker replicas on Redis', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function redis(): Promise<RedisServer> {
    const server = await startRedis();
    return cleanup.add('redis', () => server.close(), server);
  }

  async function replica(server: RedisServer, logs = new LogCapture()): Promise<EmbeddedBroker> {
    const broker = await startBroker({ host: '127.0.0.1', mqttPort: 0, wsPort: 0, logger: logs.logger, cluster: { url: server.url } });
    return cleanup.add('replica', () => broker.close(), broker);
  }

  async function client(broker: EmbeddedBroker, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
    const c = await connectClient(`mqtt://127.0.0.1:${broker.mqttPort}`, options);
    return cleanup.add('client', () => closeClient(c), c);
  }

  it('delivers desired state published through B to a device on A, live and retained, and what it missed while away', async () => {
    const server = await redis();
    const [a, b] = [await replica(server), await replica(server)];
    const desired = 'flotilla/v1/devices/dev-1/desired';

    const device = await client(a, { clientId: 'dev-1', clean: false });
    const onA = new Inbox(device);
    await device.subscribeAsync(desired, { qos: 1 });
    const service = await client(b);
    await service.publishAsync(desired, JSON.stringify({ revision: 1 }), { qos: 1, retain: true });
    expect(await onA.waitFor(desired, (p) => p.revision === 1)).toEqual({ revision: 1 });

    // Away: what B publishes now waits in the session, in Redis.
    await closeClient(device);
    await service.publishAsync(desired, JSON.stringify({ revision: 2 }), { qos: 1, retain: true });
    const back = await client(a, { clientId: 'dev-1', clean: false });
    const afterReconnect = new Inbox(back);
    expect(await afterReconnect.waitFor(desired, (p) => p.revision === 2)).toEqual({ revision: 2 });

    // A new subscriber on either replica gets the retained copy B stored.
    const fresh = await client(a);
    const freshInbox = new Inbox(fresh);
    await fresh.subscribeAsync(desired, { qos: 1 });
    await freshInbox.waitFor(desired, (p) => p.revision === 2);
    expect(freshInbox.on(desired).map((m) => m.retain)).toEqual([true]);
  });

  it('sends a reconnecting device its CONNACK before what is published to it meanwhile through another replica', async () => {
    const server = await redis();
    const [a, b] = [await replica(server), await replica(server)];
    const service = await client(b);
    // Each round: the device drops, B takes a message for its session, and the device is back while B still relays it.
    for (let round = 0; round < 10; round++) {
      const topic = `flotilla/v1/devices/dev-r${round}/desired`;
      const device = await connectClient(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: `dev-r${round}`, clean: false });
      const first = new Inbox(device);
      await device.subscribeAsync(topic, { qos: 1 });
      await service.publishAsync(topic, JSON.stringify({ revision: 0 }), { qos: 1, retain: true });
      await first.waitFor(topic, (p) => p.revision === 0);
      await device.endAsync(true);
      // Aedes acknowledges QoS 1 before it relays: the PUBACK comes back with the message still on its way.
      await service.publishAsync(topic, JSON.stringify({ revision: 1 }), { qos: 1, retain: true });
      const back = await client(a, { clientId: `dev-r${round}`, clean: false, connectTimeout: 3_000 });
      const inbox = new Inbox(back);
      await inbox.waitFor(topic, (p) => p.revision === 1);
    }
  });

  it('gives every replica’s hub bus every message, marked as published here on exactly the replica it came through', async () => {
    const server = await redis();
    const [a, b] = [await replica(server), await replica(server)];
    const heard: { replica: string; topic: string; publishedHere: boolean }[] = [];
    for (const [name, broker] of [
      ['A', a],
      ['B', b],
    ] as const) {
      await hubBus(broker.aedes).subscribe(['flotilla/v1/devices/+/state', 'flotilla/v1/api/+/request'], (topic, _payload, origin) =>
        heard.push({ replica: name, topic, publishedHere: origin.publishedHere }),
      );
    }
    const device = await client(a, { clientId: 'dev-bus' });
    await device.publishAsync('flotilla/v1/devices/dev-bus/state', '{}', { qos: 1 });
    const service = await client(b, { clientId: 'svc-bus' });
    await service.publishAsync('flotilla/v1/api/svc-bus/request', '{}', { qos: 1 });
    await hubBus(b.aedes).publish('flotilla/v1/devices/dev-hub/state', '{}', { qos: 1 });
    await waitFor('each message on both replicas', () => heard.length === 6);
    const here = (topic: string) => heard.filter((h) => h.topic === topic && h.publishedHere).map((h) => h.replica);
    expect(here('flotilla/v1/devices/dev-bus/state')).toEqual(['A']);
    expect(here('flotilla/v1/api/svc-bus/request')).toEqual(['B']);
    expect(here('flotilla/v1/devices/dev-hub/state')).toEqual(['B']);
  });

  it('gives a replica’s hub bus its own state reports and requests through subscribeHere, with no Redis subscription for them', async () => {
    const server = await redis();
    const [a, b] = [await replica(server), await replica(server)];
    const filters = ['flotilla/v1/devices/+/state', 'flotilla/v1/api/+/request'];
    const heard: { replica: string; topic: string }[] = [];
    for (const [name, broker] of [
      ['A', a],
      ['B', b],
    ] as const) {
      hubBus(broker.aedes).subscribeHere(filters, (topic) => heard.push({ replica: name, topic }));
    }
    const device = await client(a, { clientId: 'dev-here' });
    await device.publishAsync('flotilla/v1/devices/dev-here/state', '{}', { qos: 1 });
    await device.publishAsync('flotilla/v1/devices/dev-here/logs', '{}', { qos: 1 });
    const service = await client(b, { clientId: 'svc-here' });
    await service.publishAsync('flotilla/v1/api/svc-here/request', '{}', { qos: 1 });
    await hubBus(b.aedes).publish('flotilla/v1/devices/dev-hub/state', '{}', { qos: 1 });
    await waitFor('the three messages heard', () => heard.length === 3);
    // Time for a copy through Redis to arrive, were there one.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(heard).toEqual([
      { replica: 'A', topic: 'flotilla/v1/devices/dev-here/state' },
      { replica: 'B', topic: 'flotilla/v1/api/svc-here/request' },
      { replica: 'B', topic: 'flotilla/v1/devices/dev-hub/state' },
    ]);
    // What Redis says: a state report published through the shared emitter reaches no replica
    // (so none decodes it), while a topic subscribed the crossing way reaches both.
    await hubBus(a.aedes).subscribe(['flotilla/v1/devices/+/status'], () => {});
    await hubBus(b.aedes).subscribe(['flotilla/v1/devices/+/status'], () => {});
    expect(await emitterReceivers(server, 'flotilla/v1/devices/dev-none/state')).toBe(0);
    expect(await emitterReceivers(server, 'flotilla/v1/devices/dev-none/status')).toBe(2);
  });

  it('queues for a persistent session on A what is published through B while the device is away, and delivers it on C', async () => {
    const server = await redis();
    const [a, b, c] = [await replica(server), await replica(server), await replica(server)];
    const commands = 'flotilla/v1/devices/dev-2/commands';
    const device = await client(a, { clientId: 'dev-2', clean: false });
    await device.subscribeAsync(commands, { qos: 1 });
    await closeClient(device);

    const service = await client(b);
    // Aedes acknowledges QoS 1 before it queues and forwards: a watcher on C that has seen the last one
    // proves all three are queued, so none is still on its way live when the device comes back.
    const watching = await client(c);
    const watcher = new Inbox(watching);
    await watching.subscribeAsync(commands, { qos: 1 });
    for (const n of [1, 2, 3]) await service.publishAsync(commands, JSON.stringify({ n }), { qos: 1 });
    await watcher.waitFor(commands, (p) => p.n === 3);
    expect(await server.command('LLEN', 'flotilla:outgoing:dev-2')).toBe(3);

    // Back through another replica, as after a load balancer's choice: the session is in Redis.
    const back = await client(c, { clientId: 'dev-2', clean: false });
    const inbox = new Inbox(back);
    await inbox.waitFor(commands, (p) => p.n === 3);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(inbox.on(commands).map((m) => (m.json as { n: number }).n)).toEqual([1, 2, 3]);
  });

  it('bounds a persistent session’s queue by its length in Redis, whichever replica queues and whichever the device is on', async () => {
    const server = await redis();
    const logsB = new LogCapture();
    const start = (logs: LogCapture) =>
      startBroker({
        host: '127.0.0.1',
        mqttPort: 0,
        wsPort: 0,
        logger: logs.logger,
        limits: { maxQueuedMessages: 5 },
        cluster: { url: server.url },
      });
    const a: EmbeddedBroker = await start(new LogCapture());
    cleanup.add('replica A', () => a.close());
    const b: EmbeddedBroker = await start(logsB);
    cleanup.add('replica B', () => b.close());
    const commands = 'flotilla/v1/devices/dev-q/commands';
    const service = await client(b);

    // Connected to A and acknowledging: B queues far more than the bound over time, and none is refused.
    const device = await client(a, { clientId: 'dev-q', clean: false });
    const live = new Inbox(device);
    await device.subscribeAsync(commands, { qos: 1 });
    for (let n = 1; n <= 20; n++) {
      await service.publishAsync(commands, JSON.stringify({ n }), { qos: 1 });
      await live.waitFor(commands, (p) => p.n === n);
    }

    // Away: B queues 5, drops the rest, and says so once.
    // Aedes acknowledges a QoS 1 PUBLISH before it queues and forwards it: a watcher on A that has seen
    // the last one proves B is done with all ten, so none can still arrive live once the device is back.
    await closeClient(device);
    const watching = await client(a);
    const watcher = new Inbox(watching);
    await watching.subscribeAsync(commands, { qos: 1 });
    for (let n = 21; n <= 30; n++) await service.publishAsync(commands, JSON.stringify({ n }), { qos: 1 });
    await watcher.waitFor(commands, (p) => p.n === 30);
    await logsB.waitFor('persistent MQTT session is full while its client is away: dropping newer messages for it');
    await waitFor('the five queued, the rest dropped', async () => (await server.command('LLEN', 'flotilla:outgoing:dev-q')) === 5);
    const back = await client(a, { clientId: 'dev-q', clean: false });
    const queued = new Inbox(back);
    await queued.waitFor(commands, (p) => p.n === 25);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([...new Set(queued.on(commands).map((m) => (m.json as { n: number }).n))]).toEqual([21, 22, 23, 24, 25]);
    expect(logsB.matching('persistent MQTT session is full while its client is away: dropping newer messages for it')).toHaveLength(1);
  });

  it('shows a subscriber on C the telemetry a device publishes on A, and nothing twice', async () => {
    const server = await redis();
    const [a, , c] = [await replica(server), await replica(server), await replica(server)];
    const dashboard = await client(c);
    const seen = new Inbox(dashboard);
    await dashboard.subscribeAsync('flotilla/v1/devices/+/metrics', { qos: 0 });
    const device = await client(a, { clientId: 'dev-3' });
    for (const seq of [1, 2, 3]) await device.publishAsync('flotilla/v1/devices/dev-3/metrics', JSON.stringify({ seq }), { qos: 1 });
    await seen.waitFor('flotilla/v1/devices/dev-3/metrics', (p) => p.seq === 3);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.on('flotilla/v1/devices/dev-3/metrics').map((m) => (m.json as { seq: number }).seq)).toEqual([1, 2, 3]);
  });

  it('resumes delivery between replicas after Redis restarts, without restarting them, and says what it waited for', async () => {
    const server = await redis();
    const logsA = new LogCapture('info');
    const [a, b] = [await replica(server, logsA), await replica(server)];
    const subscriber = await client(a);
    const seen = new Inbox(subscriber);
    await subscriber.subscribeAsync('flotilla/v1/devices/+/state', { qos: 1 });
    const device = await client(b, { clientId: 'dev-4' });
    await device.publishAsync('flotilla/v1/devices/dev-4/state', JSON.stringify({ n: 1 }), { qos: 1 });
    await seen.waitFor('flotilla/v1/devices/dev-4/state', (p) => p.n === 1);

    await server.restart();
    await logsA.waitFor('Redis is back: delivery between replicas resumed');
    // Published after the restart: the subscription must have been renewed on the new server.
    await device.publishAsync('flotilla/v1/devices/dev-4/state', JSON.stringify({ n: 2 }), { qos: 1 });
    await seen.waitFor('flotilla/v1/devices/dev-4/state', (p) => p.n === 2);
    expect(logsA.matching('Redis lost: MQTT deliveries between replicas, retained messages and sessions wait for it')).toHaveLength(1);
    expect(logsA.matching('Redis is back: delivery between replicas resumed')[0]?.waitedMs).toBeGreaterThan(0);
  });

  it('survives Redis killed under it: what is published meanwhile reaches subscribers on the same replica once Redis is back', async () => {
    const server = await redis();
    const logsA = new LogCapture('info');
    const logsB = new LogCapture('info');
    const [a, b] = [await replica(server, logsA), await replica(server, logsB)];
    const local = await client(a);
    const seenLocally = new Inbox(local);
    await local.subscribeAsync('flotilla/v1/devices/+/events', { qos: 1 });
    const remote = await client(b);
    const seenRemotely = new Inbox(remote);
    await remote.subscribeAsync('flotilla/v1/devices/+/events', { qos: 1 });
    const device = await client(a, { clientId: 'dev-5' });

    await server.kill();
    // Aedes acknowledges QoS 1 before it publishes: the message waits in the replica, not in the device.
    await device.publishAsync('flotilla/v1/devices/dev-5/events', JSON.stringify({ seq: 1 }), { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(seenLocally.messages).toEqual([]);
    await server.start();
    // A's publish waited for A's own subscriptions to be renewed on the new server.
    await seenLocally.waitFor('flotilla/v1/devices/dev-5/events', (p) => p.seq === 1);
    await logsB.waitFor('Redis is back: delivery between replicas resumed');
    await device.publishAsync('flotilla/v1/devices/dev-5/events', JSON.stringify({ seq: 2 }), { qos: 1 });
    await seenRemotely.waitFor('flotilla/v1/devices/dev-5/events', (p) => p.seq === 2);
    expect(logsA.matching('Redis lost: MQTT deliveries between replicas, retained messages and sessions wait for it')).toHaveLength(1);
  });

  it('closes a replica while it replays a wildcard SUBSCRIBE’s retained messages, without an unheard stream error', async () => {
    const server = await redis();
    const logs = new LogCapture();
    const a = await startBroker({ host: '127.0.0.1', mqttPort: 0, wsPort: 0, logger: logs.logger, cluster: { url: server.url } });
    const publisher = await connectClient(`mqtt://127.0.0.1:${a.mqttPort}`);
    // Enough retained topics that the replay's HSCAN (10 fields a round trip) is still running at the close.
    await Promise.all(
      Array.from({ length: 3000 }, (_, i) =>
        publisher.publishAsync(`flotilla/v1/devices/w${i}/status`, '{"online":true}', { qos: 1, retain: true }),
      ),
    );
    const dashboard = await connectClient(`mqtt://127.0.0.1:${a.mqttPort}`);
    await dashboard.subscribeAsync('flotilla/v1/devices/+/status', { qos: 1 });
    await a.close();
    await logs.waitFor('retained messages for a SUBSCRIBE could not be read from Redis: not all replayed');
    await Promise.all([closeClient(publisher), closeClient(dashboard)]);
  });

  it('closes a replica within seconds while Redis is down', async () => {
    const server = await redis();
    const logs = new LogCapture();
    const broker = await startBroker({ host: '127.0.0.1', mqttPort: 0, wsPort: 0, logger: logs.logger, cluster: { url: server.url } });
    const device = await connectClient(`mqtt://127.0.0.1:${broker.mqttPort}`, { clientId: 'dev-6', clean: false });
    cleanup.add('device', () => closeClient(device));
    await device.subscribeAsync('flotilla/v1/devices/dev-6/desired', { qos: 1 });
    await server.kill();
    const started = Date.now();
    await broker.close();
    expect(Date.now() - started).toBeLessThan(7_000);
  });

  it('keeps replicas on two databases of one Redis apart: pub/sub itself does not', async () => {
    const server = await redis();
    const fleet1 = await startBroker({
      host: '127.0.0.1',
      mqttPort: 0,
      wsPort: 0,
      logger: new LogCapture().logger,
      cluster: { url: `${server.url}/1` },
    });
    cleanup.add('fleet 1', () => fleet1.close());
    const fleet2 = await startBroker({
      host: '127.0.0.1',
      mqttPort: 0,
      wsPort: 0,
      logger: new LogCapture().logger,
      cluster: { url: `${server.url}/2` },
    });
    cleanup.add('fleet 2', () => fleet2.close());
    const listener = await client(fleet1);
    const heard = new Inbox(listener);
    await listener.subscribeAsync('flotilla/v1/devices/+/status', { qos: 1 });
    const other = await client(fleet2);
    await other.publishAsync('flotilla/v1/devices/x/status', JSON.stringify({ online: true }), { qos: 1 });
    const same = await client(fleet1);
    await same.publishAsync('flotilla/v1/devices/y/status', JSON.stringify({ online: true }), { qos: 1 });
    await heard.waitFor('flotilla/v1/devices/y/status');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard.messages.map((m) => m.topic)).toEqual(['flotilla/v1/devices/y/status']);
  });
});
