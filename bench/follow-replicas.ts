/**
 * What live follow across hub replicas costs: three `flotilla server --redis … --database …`
 * processes on a private Redis and PostgreSQL, N simulated devices (plain MQTT clients in this
 * process, spread over the replicas) sending a metrics sample every second and a log batch every
 * few, and the same load measured in phases, one window each:
 *
 * - `nobody follows`: the baseline;
 * - `logs -f + events -f`: ten `logs -f` streams on replica 1 (devices of all three replicas)
 *   and one `events -f` of the whole fleet on replica 2;
 * - `fleet page on 1`: the console's fleet stream on replica 1, which then receives every
 *   device's samples;
 * - `fleet page on all 3`: the same on every replica, which is what relaying every sample to
 *   every replica all the time would cost.
 *
 * Per window: Redis PUBLISH calls/s, bytes/s into and out of Redis, Redis CPU and the three
 * replicas' CPU (user + system, % of one core), and the bytes the streams received.
 *
 *   flock /tmp/flotilla-bench.lock npx tsx bench/follow-replicas.ts [--devices 600] [--window-s 15] [--log-every-s 3]
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { Topics } from '../shared/index.js';
import { deviceState, logLine, metricsSample } from '../test/support/fixtures.js';
import { startPostgres } from '../test/support/postgres.js';
import { type HubProcess, removeDir, scratchDir, startHubProcess, stopAll } from '../test/support/processes.js';
import { startRedis } from '../test/support/redis.js';
import { positiveInt } from './int-arg.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '600' },
    'window-s': { type: 'string', default: '15' },
    'log-every-s': { type: 'string', default: '3' },
  },
});
const DEVICES = positiveInt('devices', values.devices);
const WINDOW_MS = positiveInt('window-s', values['window-s']) * 1000;
const LOG_EVERY_MS = positiveInt('log-every-s', values['log-every-s']) * 1000;
const topics = new Topics();
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

const redis = await startRedis();
const postgres = await startPostgres();
const keys = scratchDir('flotilla-bench-follow-keys-');
const replicas: HubProcess[] = [];
const clients: MqttClient[] = [];
const streams: AbortController[] = [];
const timers: NodeJS.Timeout[] = [];
try {
  const database = await postgres.createDatabase('follow_bench');
  const args = ['--redis', redis.url, '--database', database, '--secrets-key-file', join(keys, 'secrets.key'), '--log-level', 'warn'];
  for (let i = 0; i < 3; i++) replicas.push(await startHubProcess(scratchDir(`flotilla-bench-follow-${i}-`), args));
  // Each replica hears the others' broker heartbeats (every 5 s) before a stream waits for their acknowledgements.
  await new Promise((resolve) => setTimeout(resolve, 6_000));

  const ids = Array.from({ length: DEVICES }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
  for (const [i, id] of ids.entries()) {
    const client = await mqtt.connectAsync(replicas[i % 3]!.mqttUrl, { clientId: id, protocolVersion: 4, reconnectPeriod: 0 });
    // Its state report makes it a device the hub knows (a follow of an unknown device is a 404).
    await client.publishAsync(topics.device(id, 'state'), JSON.stringify(deviceState(id)), { qos: 1, retain: true });
    clients.push(client);
  }
  // Every device a sample a second and a batch of 5 lines every LOG_EVERY_MS, each spread over the period.
  let seq = 0;
  for (const [i, client] of clients.entries()) {
    const id = ids[i]!;
    const metrics = () => client.publish(topics.device(id, 'metrics'), JSON.stringify(metricsSample(++seq)), { qos: 0 });
    const logs = () =>
      client.publish(
        topics.device(id, 'logs'),
        JSON.stringify({ seq: ++seq, lines: Array.from({ length: 5 }, (_, n) => logLine(`${id} line ${seq}.${n}`)) }),
        { qos: 1 },
      );
    timers.push(
      setTimeout(() => timers.push(setInterval(metrics, 1000)), (i / DEVICES) * 1000),
      setTimeout(() => timers.push(setInterval(logs, LOG_EVERY_MS)), (i / DEVICES) * LOG_EVERY_MS),
    );
  }
  await new Promise((resolve) => setTimeout(resolve, 5_000));

  let streamBytes = 0;
  const follow = async (url: string) => {
    const abort = new AbortController();
    streams.push(abort);
    const res = await fetch(url, { signal: abort.signal });
    if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
    void (async () => {
      try {
        for await (const chunk of res.body!) streamBytes += (chunk as Uint8Array).byteLength;
      } catch {
        // ended by the abort
      }
    })();
  };
  const unfollowAll = () => {
    for (const abort of streams.splice(0)) abort.abort();
  };

  const info = async () => {
    const stats = String(await redis.command('INFO', 'all'));
    const field = (name: string) => Number(new RegExp(`${name}[:=]([\\d.]+)`).exec(stats)?.[1] ?? 0);
    return {
      publishes: field('cmdstat_publish:calls'),
      inBytes: field('total_net_input_bytes'),
      outBytes: field('total_net_output_bytes'),
      cpu: field('used_cpu_sys') + field('used_cpu_user'),
    };
  };
  const replicaCpu = () =>
    replicas.reduce((sum, r) => {
      const fields = readFileSync(`/proc/${r.proc.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return sum + (Number(fields[11]) + Number(fields[12])) / 100;
    }, 0);

  const rows: string[][] = [];
  const measure = async (phase: string) => {
    const loadBefore = load();
    const [r0, c0, b0, t0] = [await info(), replicaCpu(), streamBytes, Date.now()];
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
    const [r1, c1, b1, t1] = [await info(), replicaCpu(), streamBytes, Date.now()];
    const s = (t1 - t0) / 1000;
    rows.push([
      phase,
      ((r1.publishes - r0.publishes) / s).toFixed(0),
      ((r1.inBytes - r0.inBytes) / s / 1024).toFixed(0),
      ((r1.outBytes - r0.outBytes) / s / 1024).toFixed(0),
      (((r1.cpu - r0.cpu) / s) * 100).toFixed(1),
      (((c1 - c0) / s) * 100).toFixed(1),
      ((b1 - b0) / s / 1024).toFixed(1),
      `${loadBefore} → ${load()}`,
    ]);
    console.log(rows.at(-1)!.join(' | '));
  };

  console.log(`devices ${DEVICES} (a sample/s each, 5 lines every ${LOG_EVERY_MS / 1000} s), windows of ${WINDOW_MS / 1000} s`);
  await measure('nobody follows');
  for (const id of ids.slice(0, 10)) await follow(`${replicas[1]!.url}/api/v1/devices/${id}/logs?follow=true&tail=1`);
  await follow(`${replicas[2]!.url}/api/v1/events?follow=true&tail=1`);
  await measure('logs -f ×10 + events -f');
  unfollowAll();
  await follow(`${replicas[1]!.url}/api/v1/devices?follow=true`);
  await measure('fleet page on 1');
  for (const r of [replicas[0]!, replicas[2]!]) await follow(`${r.url}/api/v1/devices?follow=true`);
  await measure('fleet page on all 3');
  unfollowAll();
  await measure('nobody follows again');

  console.log(
    '\n| phase | Redis PUBLISH/s | into Redis KiB/s | out of Redis KiB/s | Redis CPU % | replicas CPU % | streams KiB/s | load |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
} finally {
  for (const timer of timers) clearInterval(timer);
  for (const abort of streams) abort.abort();
  await Promise.allSettled(clients.map((c) => c.endAsync(true)));
  await stopAll();
  for (const r of replicas) removeDir(r.dataDir);
  removeDir(keys);
  await postgres.close();
  await redis.close();
}
