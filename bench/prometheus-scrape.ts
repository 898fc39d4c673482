/**
 * What the Prometheus exporter and the broker's traffic counters cost.
 *
 *   1. Scrape: a hub (in process) with N devices, each with a status, a state
 *      of 3 apps and one metrics sample, published over MQTT; then GET /metrics
 *      `--scrapes` times. Reports the median and p95 time, the body size, and
 *      the longest the hub's event loop was held meanwhile (the hub runs in this
 *      process: perf_hooks.monitorEventLoopDelay, sampled every 10 ms, so the
 *      figure includes up to 10 ms of sampling interval).
 *   2. Counting: the hub's broker module with and without the traffic hooks
 *      (publish event + authorizeForward), one publisher sending QoS 0
 *      messages on device metrics topics to one subscriber; rounds alternate.
 *      Reports messages/s seen by the subscriber.
 *
 *   npx tsx bench/prometheus-scrape.ts [--devices 100,1000,5000] [--scrapes 20] [--messages 100000] [--rounds 3]
 *   (--rounds 0 skips the relay part; --devices '' skips the scrape part)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import pino from 'pino';
import { startHub } from '../broker/hub.js';
import { startBroker } from '../broker/mqtt/broker.js';
import { BrokerTraffic } from '../broker/mqtt/traffic.js';
import { Topics } from '../shared/index.js';
import { deviceState, metricsSample } from '../test/support/fixtures.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '100,1000,5000' },
    scrapes: { type: 'string', default: '20' },
    messages: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
  },
  strict: true,
});

const topics = new Topics();
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function scrapeCost(devices: number, scrapes: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-prom-'));
  const hub = await startHub({ dataDir, host: '127.0.0.1', mqttPort: 0, wsPort: 0, httpPort: 0, logLevel: 'warn' });
  const base = `http://127.0.0.1:${hub.ports.http}`;
  try {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.ports.mqtt}`, { protocolVersion: 4 });
    const apps = ['thermo', 'cam', 'gateway'].map((name, i) => ({
      name,
      revision: 1,
      phase: i === 2 ? ('failed' as const) : ('running' as const),
      containers: [],
    }));
    for (let i = 0; i < devices; i++) {
      const id = `dev-${i}`;
      await Promise.all([
        client.publishAsync(topics.device(id, 'status'), JSON.stringify({ online: true, at: new Date().toISOString() }), { qos: 1 }),
        client.publishAsync(topics.device(id, 'state'), JSON.stringify(deviceState(id, { apps })), { qos: 1 }),
        client.publishAsync(topics.device(id, 'metrics'), JSON.stringify(metricsSample(1)), { qos: 1 }),
      ]);
    }
    await client.endAsync();
    // Wait until the dispatcher and the ingest have everything.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const text = await (await fetch(`${base}/metrics`)).text();
      const known = Number(/^flotilla_devices_known (\d+)/m.exec(text)?.[1]);
      const samples = (text.match(/^flotilla_device_cpu_percent\{/gm) ?? []).length;
      const withApps = Number(/^flotilla_app_devices\{app="cam",phase="running"\} (\d+)/m.exec(text)?.[1]);
      if (known === devices && samples === devices && withApps === devices) break;
      if (Date.now() > deadline) throw new Error(`fleet not ready: ${known} devices, ${samples} samples, ${withApps} with apps`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const times: number[] = [];
    let bytes = 0;
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    for (let i = 0; i < scrapes; i++) {
      const start = performance.now();
      const body = await (await fetch(`${base}/metrics`)).text();
      times.push(performance.now() - start);
      bytes = Buffer.byteLength(body);
    }
    loop.disable();
    return { devices, medianMs: quantile(times, 0.5), p95Ms: quantile(times, 0.95), bytes, loopMaxMs: loop.max / 1e6 };
  } finally {
    await hub.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function relayRate(counting: boolean, messages: number): Promise<number> {
  const traffic = new BrokerTraffic(topics);
  const broker = await startBroker({
    host: '127.0.0.1',
    mqttPort: 0,
    wsPort: 0,
    logger: pino({ level: 'silent' }),
    ...(counting ? { hooks: { authorizeForward: traffic.onForward } } : {}),
  });
  if (counting) broker.aedes.on('publish', traffic.onPublish);
  try {
    const url = `mqtt://127.0.0.1:${broker.mqttPort}`;
    const sub = await mqtt.connectAsync(url, { protocolVersion: 4 });
    const pub = await mqtt.connectAsync(url, { protocolVersion: 4 });
    await sub.subscribeAsync(topics.allDevices('metrics'), { qos: 0 });
    const payload = JSON.stringify(metricsSample(1));
    let received = 0;
    const done = new Promise<void>((resolve) =>
      sub.on('message', () => {
        if (++received === messages) resolve();
      }),
    );
    const start = performance.now();
    for (let i = 0; i < messages; i++) {
      pub.publish(topics.device(`dev-${i % 100}`, 'metrics'), payload, { qos: 0 });
      // Let the socket drain now and then, as a real publisher would.
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    await done;
    const rate = messages / ((performance.now() - start) / 1000);
    if (counting && traffic.sent().metrics !== messages) throw new Error(`counted ${traffic.sent().metrics} deliveries of ${messages}`);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
    return rate;
  } finally {
    await broker.close();
  }
}

const scrapeRows = [];
for (const n of args.devices.split(',').filter(Boolean).map(Number)) scrapeRows.push(await scrapeCost(n, Number(args.scrapes)));
console.log('\nGET /metrics');
console.log('| devices | median ms | p95 ms | body KiB | event loop held, max ms |');
console.log('|---|---|---|---|---|');
for (const r of scrapeRows)
  console.log(
    `| ${r.devices} | ${r.medianMs.toFixed(1)} | ${r.p95Ms.toFixed(1)} | ${(r.bytes / 1024).toFixed(0)} | ${r.loopMaxMs.toFixed(0)} |`,
  );

const rounds = Number(args.rounds);
const rates: Record<'off' | 'on', number[]> = { off: [], on: [] };
for (let round = 0; round < rounds; round++) {
  rates.off.push(await relayRate(false, Number(args.messages)));
  rates.on.push(await relayRate(true, Number(args.messages)));
}
if (rounds > 0) {
  console.log(`\nbroker relay, ${args.messages} QoS 0 metrics messages, 1 subscriber (messages/s per round)`);
  console.log('| traffic counting | median msg/s | all |');
  console.log('|---|---|---|');
  for (const key of ['off', 'on'] as const) {
    console.log(`| ${key} | ${quantile(rates[key], 0.5).toFixed(0)} | ${rates[key].map((r) => r.toFixed(0)).join(', ')} |`);
  }
}
