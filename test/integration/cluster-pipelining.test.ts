/**
 * A clustered broker's Redis commands go out pipelined (broker/mqtt/cluster-redis.ts): a fan-out
 * of retained QoS 1 documents to persistent sessions is several persistence commands per
 * delivery (the retained copy, the session's queue, the message id, the PUBACK's clearing) and a
 * PUBLISH each, for every device at once, and one write per command made the replicas' syscalls
 * cost more than Redis' work. Measured by Redis itself: the commands it processed against the
 * reads it took them in (INFO stats), for a real Aedes on a private redis-server and real MQTT.js
 * devices.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker } from '../../broker/mqtt/broker.js';
import { hubBus } from '../../broker/mqtt/hub-bus.js';
import { Cleanup } from '../support/cleanup.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { type RedisServer, startRedis } from '../support/redis.js';

const DEVICES = 100;

/** Commands processed and read events, from Redis' INFO stats. */
async function redisStats(server: RedisServer): Promise<{ commands: number; reads: number }> {
  const info = String(await server.command('INFO', 'stats'));
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return { commands: field('total_commands_processed'), reads: field('total_reads_processed') };
}

describe('a clustered broker’s Redis commands', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('reach Redis several to a read when a fan-out delivers to many persistent sessions at once', { timeout: 60_000 }, async () => {
    const server = await startRedis();
    cleanup.add('redis', () => server.close());
    const broker = await startBroker({
      host: '127.0.0.1',
      mqttPort: 0,
      wsPort: 0,
      logger: new LogCapture().logger,
      cluster: { url: server.url },
    });
    cleanup.add('broker', () => broker.close());
    const inboxes: Inbox[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const device = await connectClient(`mqtt://127.0.0.1:${broker.mqttPort}`, { clientId: `dev-${i}`, clean: false });
      cleanup.add('device', () => closeClient(device));
      inboxes.push(new Inbox(device));
      await device.subscribeAsync(`flotilla/v1/devices/dev-${i}/desired`, { qos: 1 });
    }
    const bus = hubBus(broker.aedes);
    const before = await redisStats(server);
    // As the dispatcher hands the broker a chunk of desired documents: all at once.
    await Promise.all(
      inboxes.map((_, i) => bus.publish(`flotilla/v1/devices/dev-${i}/desired`, JSON.stringify({ revision: 1 }), { qos: 1, retain: true })),
    );
    for (const [i, inbox] of inboxes.entries()) await inbox.waitFor(`flotilla/v1/devices/dev-${i}/desired`, (p) => p.revision === 1);
    const after = await redisStats(server);
    const commands = after.commands - before.commands;
    const reads = after.reads - before.reads;
    console.info(`${DEVICES} deliveries: ${commands} Redis commands in ${reads} reads`);
    // Each delivery is several commands: every one of them must have been sent.
    expect(commands).toBeGreaterThanOrEqual(DEVICES * 4);
    // Pipelined, a burst's commands arrive together; one write each, Redis reads about one per command.
    expect(reads).toBeLessThan(commands / 4);
  });
});
