/**
 * The known traps of Aedes on Redis (broker/mqtt/cluster.ts lists them):
 * each is shown on stock Aedes with the same libraries, then shown not to
 * happen on the hub's clustered broker, or refused at start with a clear
 * error. Real Aedes brokers, MQTT.js clients and a private redis-server.
 */
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveHubConfig } from '../../broker/config.js';
import type { EmbeddedBroker } from '../../broker/mqtt/broker.js';
import { isRedisUnreachable } from '../../broker/mqtt/cluster-redis.js';
import { Cleanup } from '../support/cleanup.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { freePort } from '../support/ports.js';
import { type RedisServer, startRedis } from '../support/redis.js';
import { startReplicaBroker } from '../support/replica-broker.js';
import { waitFor } from '../support/wait.js';

const require = createRequire(import.meta.url);
const redisPersistence = require('aedes-persistence-redis') as (options: {
  host: string;
  port: number;
}) => NonNullable<AedesOptions['persistence']>;
interface Emitter {
  on(topic: string, listener: (message: { topic: string }, done: () => void) => void, callback?: () => void): void;
  emit(message: { topic: string; payload: string }, callback?: (err?: Error) => void): void;
  close(callback: () => void): void;
}
const mqemitterRedis = require('mqemitter-redis') as (options: { connectionString: string }) => Emitter;

/** Long enough for a message between replicas on loopback (a few ms) to have arrived. */
const QUIET_MS = 1_000;

describe('traps of Aedes on Redis', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function redis(options: Parameters<typeof startRedis>[0] = {}): Promise<RedisServer> {
    const server = await startRedis(options);
    return cleanup.add('redis', () => server.close(), server);
  }

  async function replica(server: RedisServer): Promise<EmbeddedBroker> {
    const broker = await startReplicaBroker(server.url);
    return cleanup.add('replica', () => broker.close(), broker);
  }

  /** Stock Aedes on a loopback port with the given options; its MQTT URL. */
  async function stockBroker(options: AedesOptions): Promise<string> {
    const aedes = await Aedes.createBroker(options);
    const server = createServer(aedes.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.add(
      'stock broker',
      () =>
        new Promise<void>((resolve) =>
          aedes.close(() => {
            void (aedes as unknown as { persistence: { destroy(): Promise<void> } }).persistence.destroy().catch(() => {});
            server.close(() => resolve());
          }),
        ),
    );
    return `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  async function client(url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
    const c = await connectClient(url, options);
    return cleanup.add('client', () => closeClient(c), c);
  }

  const urlOf = (broker: EmbeddedBroker) => `mqtt://127.0.0.1:${broker.mqttPort}`;

  it('shared persistence without the shared emitter: stock Aedes delivers nothing across brokers; the hub cannot be set up that way', async () => {
    const server = await redis();
    const topic = 'flotilla/v1/devices/d1/desired';

    const [stockA, stockB] = [
      await stockBroker({ persistence: redisPersistence({ host: server.host, port: server.port }) }),
      await stockBroker({ persistence: redisPersistence({ host: server.host, port: server.port }) }),
    ];
    const stockDevice = await client(stockA, { clientId: 'd1', clean: false });
    const stockInbox = new Inbox(stockDevice);
    await stockDevice.subscribeAsync(topic, { qos: 1 });
    const stockService = await client(stockB);
    await stockService.publishAsync(topic, JSON.stringify({ revision: 1 }), { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    expect(stockInbox.messages).toEqual([]);

    // The hub's replicas take one URL and build both from it.
    const [a, b] = [await replica(server), await replica(server)];
    const device = await client(urlOf(a), { clientId: 'd2', clean: false });
    const inbox = new Inbox(device);
    await device.subscribeAsync('flotilla/v1/devices/d2/desired', { qos: 1 });
    const service = await client(urlOf(b));
    await service.publishAsync('flotilla/v1/devices/d2/desired', JSON.stringify({ revision: 1 }), { qos: 1 });
    expect(await inbox.waitFor('flotilla/v1/devices/d2/desired')).toEqual({ revision: 1 });
  });

  it('a retained QoS 2 message to a persistent session: stock Aedes on Redis closes the connection; the hub grants QoS 1 and delivers it', async () => {
    const server = await redis();
    const topic = 'flotilla/v1/devices/d3/desired';

    const stock = await stockBroker({ persistence: redisPersistence({ host: server.host, port: server.port }) });
    const stockPublisher = await client(stock);
    await stockPublisher.publishAsync(topic, JSON.stringify({ revision: 1 }), { qos: 2, retain: true });
    const stockDevice = await client(stock, { clientId: 'd3', clean: false });
    const closed = new Promise<void>((resolve) => stockDevice.once('close', () => resolve()));
    const stockInbox = new Inbox(stockDevice);
    await stockDevice.subscribeAsync(topic, { qos: 2 });
    await closed;
    expect(stockInbox.messages.length).toBeLessThanOrEqual(1);
    expect(stockDevice.connected).toBe(false);

    const [a, b] = [await replica(server), await replica(server)];
    const publisher = await client(urlOf(b));
    const clusteredTopic = 'flotilla/v1/devices/d4/desired';
    await publisher.publishAsync(clusteredTopic, JSON.stringify({ revision: 2 }), { qos: 2, retain: true });
    const device = await client(urlOf(a), { clientId: 'd4', clean: false });
    const inbox = new Inbox(device);
    const qos: number[] = [];
    device.on('message', (_topic, _payload, packet) => qos.push(packet.qos));
    await device.subscribeAsync(clusteredTopic, { qos: 2 });
    expect(await inbox.waitFor(clusteredTopic)).toEqual({ revision: 2 });
    // And on the restored session after a reconnect, through the other replica.
    await closeClient(device);
    await publisher.publishAsync(clusteredTopic, JSON.stringify({ revision: 3 }), { qos: 2, retain: true });
    const back = await client(urlOf(b), { clientId: 'd4', clean: false });
    const backInbox = new Inbox(back);
    back.on('message', (_topic, _payload, packet) => qos.push(packet.qos));
    expect(await backInbox.waitFor(clusteredTopic)).toEqual({ revision: 3 });
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    expect(back.connected).toBe(true);
    expect(qos).toEqual([1, 1]);
  });

  it('Redis databases do not separate pub/sub: stock mqemitter-redis on db 1 hears db 2; the hub prefixes channels with the database', async () => {
    const server = await redis();
    const db1 = mqemitterRedis({ connectionString: `${server.url}/1` });
    const db2 = mqemitterRedis({ connectionString: `${server.url}/2` });
    cleanup.add('emitters', () => Promise.all([new Promise<void>((r) => db1.close(r)), new Promise<void>((r) => db2.close(r))]));
    const heard: string[] = [];
    await new Promise<void>((resolve) =>
      db1.on(
        'flotilla/v1/devices/+/status',
        (message: { topic: string }, done: () => void) => {
          heard.push(message.topic);
          done();
        },
        resolve,
      ),
    );
    await new Promise<void>((resolve, reject) =>
      db2.emit({ topic: 'flotilla/v1/devices/other-fleet/status', payload: 'x' }, (err?: Error) => (err ? reject(err) : resolve())),
    );
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    expect(heard).toEqual(['flotilla/v1/devices/other-fleet/status']);
    // The hub's side: test/integration/cluster-delivery.test.ts, "keeps replicas on two databases of one Redis apart".
  });

  it('all retained messages in one hash: the fleet shares one Redis key, and a device finds its own by topic', async () => {
    const server = await redis();
    const [a, b] = [await replica(server), await replica(server)];
    const publisher = await client(urlOf(b));
    for (const id of ['r1', 'r2', 'r3']) {
      await publisher.publishAsync(`flotilla/v1/devices/${id}/desired`, JSON.stringify({ id }), { qos: 1, retain: true });
    }
    // Aedes acknowledges a QoS 1 PUBLISH before it stores the retained copy, so the PUBACK
    // does not mean the hash is written yet.
    await waitFor('three retained messages in Redis', async () => (await server.command('HLEN', 'flotilla:retained')) === 3);
    expect(await server.command('KEYS', '*retained*')).toEqual(['flotilla:retained']);
    const device = await client(urlOf(a), { clientId: 'r2' });
    const inbox = new Inbox(device);
    await device.subscribeAsync('flotilla/v1/devices/r2/desired', { qos: 1 });
    await inbox.waitFor('flotilla/v1/devices/r2/desired');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(inbox.messages.map((m) => m.json)).toEqual([{ id: 'r2' }]);
  });

  it('refuses to start with one clear error when Redis is unreachable or refuses the login, naming the URL without its password', async () => {
    const port = await freePort();
    const start = (url: string) => startReplicaBroker(url);

    const unreachable = await start(`redis://:hunter2@127.0.0.1:${port}`).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isRedisUnreachable(unreachable)).toBe(true);
    expect((unreachable as Error).message).toMatch(
      new RegExp(`^Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/? \\(--redis\\) is unreachable: .*ECONNREFUSED`),
    );
    expect((unreachable as Error).message).not.toContain('hunter2');

    const server = await redis({ password: 'right-one' });
    const refused = await start(`redis://:wrong-one@127.0.0.1:${server.port}`).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((refused as Error).message).toMatch(/^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/? \(--redis\) refused the login: WRONGPASS/);
    expect((refused as Error).message).not.toContain('wrong-one');
    const broker = await start(server.url);
    await broker.close();
  });

  it('refuses a --redis that is not a Redis URL, saying what is wrong', () => {
    const config = (redis: string) => () => resolveHubConfig({ redis });
    expect(config('http://127.0.0.1:6379')).toThrow('redis: expected redis:// or rediss://, not http://');
    expect(config('localhost:6379')).toThrow('redis: expected redis:// or rediss://, not localhost:');
    expect(config('redis://127.0.0.1:6379/fleet')).toThrow('redis: the path must be a database number (0-15), not /fleet');
    const database = 'postgres://flotilla@127.0.0.1:5432/flotilla';
    expect(resolveHubConfig({ redis: 'redis://127.0.0.1:6379/2', database }).redis).toBe('redis://127.0.0.1:6379/2');
    // Replicas sharing a broker but each planning from its own SQLite file would disagree about the fleet.
    expect(() => resolveHubConfig({ redis: 'redis://127.0.0.1:6379/2' })).toThrow(
      'redis: replicas sharing a broker on Redis must share one database too: add --database postgres://…',
    );
    expect(resolveHubConfig({}).redis).toBeUndefined();
  });
});
