/**
 * How many Redis subscribers a message on an MQTT topic reaches through the clustered hub's
 * shared emitter (broker/mqtt/cluster.ts): PUBLISH answers the count, so a test can tell which
 * topics cross between replicas, and that those that must not reach nobody (no replica decodes them).
 */
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import type { RedisServer } from './redis.js';

const msgpack = createRequire(import.meta.url)('msgpack-lite') as { encode(value: unknown): Buffer };

/**
 * Publishes on `topic`'s channel (the hub's default prefix, database 0) the emitter's own encoding of
 * an empty payload, which the hub drops as a cleared retained message should anyone receive it.
 */
export async function emitterReceivers(server: RedisServer, topic: string): Promise<number> {
  const channel = `flotilla:0:${topic}`;
  const conn = new Redis(server.url);
  try {
    return await conn.publish(
      channel,
      msgpack.encode({ id: `probe-${Date.now()}-${topic}`, msg: { topic: channel, payload: Buffer.alloc(0) } }),
    );
  } finally {
    conn.disconnect();
  }
}
