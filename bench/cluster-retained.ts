/**
 * The clustered broker's retained messages, all in one Redis hash (aedes-persistence-redis):
 * what a fleet of N devices keeps there, how long a replica takes to start over N persistent
 * sessions, what a device's own SUBSCRIBE costs, and what a dashboard's wildcard SUBSCRIBE costs
 * (it scans the whole hash). One clustered broker on a private redis-server; MQTT.js clients.
 *
 *   N=10000 npx tsx bench/cluster-retained.ts
 */

import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import { startRedis } from '../test/support/redis.js';
import { startReplicaBroker } from '../test/support/replica-broker.js';

const require = createRequire(import.meta.url);
const msgpack = require('msgpack-lite');
const N = Number(process.env.N ?? 10000);
const DESIRED_BYTES = 4096;
const server = await startRedis();
const db = new Redis(server.url);
const info = async (field: string) => Number(((await db.info()).match(new RegExp(`${field}:(\\d+)`)) ?? [])[1]);
console.log(
  `load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; N=${N}`,
);
// Fill what a fleet of N keeps retained: desired (4 KiB), state (~1 KiB), status (~50 B); and N persistent sessions.
const t0 = performance.now();
for (let start = 0; start < N; start += 500) {
  const p = db.pipeline();
  for (let i = start; i < Math.min(N, start + 500); i++) {
    const id = `dev-${String(i).padStart(5, '0')}`;
    for (const [channel, bytes] of [
      ['desired', DESIRED_BYTES],
      ['state', 1024],
      ['status', 48],
    ] as const) {
      const topic = `flotilla/v1/devices/${id}/${channel}`;
      p.hset(
        'flotilla:retained',
        topic,
        msgpack.encode({ cmd: 'publish', topic, payload: Buffer.alloc(bytes, 120), qos: 1, retain: true, brokerId: 'x', brokerCounter: i }),
      );
    }
    p.sadd('flotilla:clients', id);
    p.hset(
      `flotilla:client:${encodeURIComponent(id)}`,
      `flotilla/v1/devices/${id}/desired`,
      msgpack.encode({ topic: `flotilla/v1/devices/${id}/desired`, qos: 1 }),
    );
  }
  await p.exec();
}
console.log(
  `filled in ${(performance.now() - t0).toFixed(0)} ms; redis used_memory ${((await info('used_memory')) / 1048576).toFixed(1)} MiB; HLEN retained ${await db.hlen('flotilla:retained')}`,
);
const startAt = performance.now();
const broker = await startReplicaBroker(server.url);
console.log(`replica start with ${N} persistent sessions in Redis: ${(performance.now() - startAt).toFixed(0)} ms`);
const url = `mqtt://127.0.0.1:${broker.mqttPort}`;
const c = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
// Exact topic: a device's own desired document on (re)subscribe.
const exact: number[] = [];
for (let k = 0; k < 200; k++) {
  const topic = `flotilla/v1/devices/dev-${String((k * 37) % N).padStart(5, '0')}/desired`;
  const t = performance.now();
  const got = new Promise<void>((r) => c.once('message', () => r()));
  await c.subscribeAsync(topic, { qos: 1 });
  await got;
  exact.push(performance.now() - t);
  await c.unsubscribeAsync(topic);
}
exact.sort((a, b) => a - b);
console.log(`exact-topic SUBSCRIBE to its retained message: p50 ${exact[100]!.toFixed(2)} ms, p99 ${exact[198]!.toFixed(2)} ms`);
// Wildcard: a dashboard's first subscription to every device's status.
for (const filter of ['flotilla/v1/devices/+/status', 'flotilla/v1/devices/dev-00001/+']) {
  const out0 = await info('total_net_output_bytes');
  const d = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  const expected = filter.endsWith('/+') ? 3 : N;
  let n = 0;
  const t = performance.now();
  const all = new Promise<void>((r) =>
    d.on('message', () => {
      if (++n === expected) r();
    }),
  );
  await d.subscribeAsync(filter, { qos: 1 });
  await all;
  const ms = performance.now() - t;
  const out = (await info('total_net_output_bytes')) - out0;
  console.log(
    `wildcard SUBSCRIBE ${filter}: ${expected} retained messages in ${ms.toFixed(0)} ms; Redis sent ${(out / 1048576).toFixed(1)} MiB for it`,
  );
  await d.endAsync();
}
await c.endAsync();
await broker.close();
db.disconnect();
await server.close();
