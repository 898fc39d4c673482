/**
 * A Redis outage on clustered brokers (broker/mqtt/cluster.ts): no replica hears any heartbeat
 * while Redis is away, its own included, so once Redis is back every replica's heartbeat looks
 * stale until the next one arrives. A will sweep then must not take the replicas for dead and
 * publish their live clients' wills: a device that never disconnected would be shown offline
 * (its will is a retained `online: false`) until it next reported itself online.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedBroker } from '../../broker/mqtt/broker.js';
import { Cleanup } from '../support/cleanup.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { startRedis } from '../support/redis.js';
import { startReplicaBroker } from '../support/replica-broker.js';

/** Short, so an outage of a few heartbeats is long enough for sweeps to run while every heartbeat is stale. */
const HEARTBEAT_MS = 200;
const status = (id: string) => `flotilla/v1/devices/${id}/status`;

describe('device presence across a Redis outage on replicas', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** Named with colons, which the hub's own names (host-pid-random) avoid but the sweep must survive: Redis keys split on ':'. */
  async function replica(url: string, id: string): Promise<EmbeddedBroker> {
    // As the hub does (broker/hub/mqtt.ts): a dead replica's client may have its own status published.
    const sweptWills = (clientId: string, topic: string) => topic === status(clientId);
    const broker = await startReplicaBroker(url, { cluster: { heartbeatMs: HEARTBEAT_MS, sweptWills, id } });
    return cleanup.add('replica', () => broker.close(), broker);
  }

  /** A device as the agent connects: persistent session, a retained offline status as its will, then online. */
  async function device(url: string, id: string): Promise<MqttClient> {
    const c = await connectClient(url, {
      clientId: id,
      clean: false,
      keepalive: 60,
      will: { topic: status(id), payload: Buffer.from(JSON.stringify({ online: false })), qos: 1, retain: true },
    });
    cleanup.add('device', () => closeClient(c));
    await c.publishAsync(status(id), JSON.stringify({ online: true }), { qos: 1, retain: true });
    return c;
  }

  it('publishes no will of a live client when Redis comes back, on its own replica or another', { timeout: 90_000 }, async () => {
    const redis = await startRedis({ appendonly: true });
    cleanup.add('redis', () => redis.close());
    const a = await replica(redis.url, `test:${process.pid}:a`);
    const b = await replica(redis.url, `test:${process.pid}:b`);
    const onA = await device(`mqtt://127.0.0.1:${a.mqttPort}`, 'dev-a');
    const onB = await device(`mqtt://127.0.0.1:${b.mqttPort}`, 'dev-b');
    const dashboard = await connectClient(`mqtt://127.0.0.1:${b.mqttPort}`);
    cleanup.add('dashboard', () => closeClient(dashboard));
    const inbox = new Inbox(dashboard);
    await dashboard.subscribeAsync('flotilla/v1/devices/+/status', { qos: 1 });
    await inbox.waitFor(status('dev-a'), (s) => s.online === true);
    await inbox.waitFor(status('dev-b'), (s) => s.online === true);

    // Three outages of 15 heartbeats each: sweeps (one every 4) run while every heartbeat is over 3 stale, and the
    // ones queued meanwhile race the heartbeats heard again once Redis is back (about one outage in two lost).
    for (let outage = 0; outage < 3; outage++) {
      await redis.stop();
      await new Promise((resolve) => setTimeout(resolve, 15 * HEARTBEAT_MS));
      await redis.start();
      await onA.publishAsync('flotilla/v1/devices/dev-a/events', 'after the outage', { qos: 1 });
      // Back for 12 more heartbeats: the queued sweeps have run, and three more after them.
      await new Promise((resolve) => setTimeout(resolve, 12 * HEARTBEAT_MS));
    }

    expect(inbox.messages.filter((m) => (m.json as { online?: boolean } | undefined)?.online === false).map((m) => m.topic)).toEqual([]);
    // And what a dashboard connecting now is told: both devices still online.
    const late = await connectClient(`mqtt://127.0.0.1:${a.mqttPort}`);
    cleanup.add('late dashboard', () => closeClient(late));
    const retained = new Inbox(late);
    await late.subscribeAsync('flotilla/v1/devices/+/status', { qos: 1 });
    expect(await retained.waitFor(status('dev-a'))).toEqual({ online: true });
    expect(await retained.waitFor(status('dev-b'))).toEqual({ online: true });
    expect(onA.connected && onB.connected).toBe(true);
  });
});
