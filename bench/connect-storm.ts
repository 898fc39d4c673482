/**
 * Reconnect storm: N devices connect at once to a broker with connection
 * admission (broker/mqtt/admission.ts), and each retries like the agent does
 * (exponential backoff with full jitter, 1 s window doubling to 60 s,
 * connect timeout 10 s, persistent session). Compares admission modes: no
 * limit, refuse at once, and hold up to W ms for a token before refusing.
 *
 *   npx tsx bench/connect-storm.ts [--devices 2000] [--rate 200] [--waits none,0,250,1000,5000] [--spread-ms 0]
 *                                  [--retained indexed,stock] [--retained-per-device 1] [--json]
 *
 * --retained compares the broker's exact-topic retained index
 * (broker/mqtt/retained-index.ts) with Aedes' stock scan of every retained
 * topic per SUBSCRIBE; --retained-per-device 3 retains a state and a status
 * document beside each desired one, as a real fleet does.
 *
 * The broker runs in a child process (the hub's broker module, its
 * admission hook, and one retained ~600-byte desired document per device);
 * the devices are MQTT.js clients in this process. A device counts as in
 * once it is connected and has received its retained desired document.
 *
 * Columns: all in / p50 / p90 (s from the storm's start until every / half /
 * 90 % of the devices were in), attempts (TCP connections opened, all
 * devices), refused and held (the admission counters), broker CPU s (user +
 * system of the broker process over the storm), max loop delay ms (the
 * broker's event loop, the worst stall anything else on the hub would see).
 * refused seen / timed out are what the devices saw: CONNACK "server
 * unavailable", and attempts abandoned after the 10 s connect timeout.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import pino from 'pino';
import { DEFAULT_RECONNECT, reconnectDelay } from '../agent/reconnect-backoff.js';
import { createConnectionAdmission } from '../broker/mqtt/admission.js';
import { startBroker } from '../broker/mqtt/broker.js';
import { positiveInt } from './int-arg.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '200' },
    waits: { type: 'string', default: 'none,0,250,1000,5000' },
    'spread-ms': { type: 'string', default: '0' },
    retained: { type: 'string', default: 'indexed' },
    'retained-per-device': { type: 'string', default: '1' },
    'timeout-s': { type: 'string', default: '300' },
    broker: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

interface BrokerSetup {
  devices: number;
  /** 0: no admission limit. */
  rate: number;
  maxWaitMs: number;
  retainedIndex: boolean;
  retainedPerDevice: number;
}
type BrokerReply =
  | { type: 'ready'; port: number }
  | { type: 'stats'; cpuMs: number; maxRssMb: number; maxLoopDelayMs: number; admitted: number; refused: number; delayed: number };

if (args.broker) {
  process.once('message', (setup: BrokerSetup) => void runBroker(setup));
} else {
  if (args.help) {
    console.log(
      'usage: npx tsx bench/connect-storm.ts [--devices N] [--rate R] [--waits none,0,250,1000] [--spread-ms MS] [--timeout-s S] [--json]',
    );
    process.exit(0);
  }
  await main();
}

async function runBroker(setup: BrokerSetup): Promise<void> {
  const logger = pino({ level: 'silent' });
  const admission = createConnectionAdmission({ rate: setup.rate, maxWaitMs: setup.maxWaitMs, logger });
  const broker = await startBroker({
    host: '127.0.0.1',
    mqttPort: 0,
    wsPort: 0,
    logger,
    hooks: { preConnect: admission.preConnect },
    retainedIndex: setup.retainedIndex,
  });
  const filler = 'x'.repeat(500);
  await Promise.all(
    Array.from(
      { length: setup.devices * setup.retainedPerDevice },
      (_, n) =>
        new Promise<void>((resolve) =>
          broker.aedes.publish(
            {
              cmd: 'publish',
              topic: retainedTopic(n, setup.devices),
              payload: Buffer.from(JSON.stringify({ revision: 1, filler })),
              qos: 1,
              retain: true,
              dup: false,
            },
            () => resolve(),
          ),
        ),
    ),
  );
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let cpuStart = process.cpuUsage();
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'start') {
      cpuStart = process.cpuUsage();
      loop.reset();
      loop.enable();
    } else if (msg.type === 'stats') {
      const cpu = process.cpuUsage(cpuStart);
      loop.disable();
      const counters = admission.counters();
      // maxRSS is the process's peak since it started (KiB): the retained documents plus the storm.
      const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
      send({ type: 'stats', cpuMs: (cpu.user + cpu.system) / 1000, maxRssMb, maxLoopDelayMs: loop.max / 1e6, ...counters });
      admission.close();
      void broker.close().then(() => process.exit(0));
    }
  });
  send({ type: 'ready', port: broker.mqttPort });
}

function send(reply: BrokerReply): void {
  process.send?.(reply);
}

function desiredTopic(i: number): string {
  return `flotilla/v1/devices/storm-${i}/desired`;
}

/** Retained document n: every device's desired first, then their state and status. */
function retainedTopic(n: number, devices: number): string {
  const channel = ['desired', 'state', 'status'][Math.floor(n / devices)] ?? 'desired';
  return `flotilla/v1/devices/storm-${n % devices}/${channel}`;
}

interface Row {
  retained: string;
  mode: string;
  devices: number;
  rate: number;
  allInS: number;
  p50S: number;
  p90S: number;
  attempts: number;
  /** Client side: attempts answered "server unavailable", and attempts that hit the 10 s connect timeout. */
  refusedSeen: number;
  timedOut: number;
  refused: number;
  held: number;
  brokerCpuS: number;
  /** The broker process's peak RSS. */
  brokerMaxRssMb: number;
  clientsCpuS: number;
  maxLoopDelayMs: number;
  clientsMaxLoopDelayMs: number;
}

async function main(): Promise<void> {
  const devices = positiveInt('devices', args.devices);
  const rate = positiveInt('rate', args.rate);
  const spreadMs = positiveInt('spread-ms', args['spread-ms'], 0);
  const timeoutMs = positiveInt('timeout-s', args['timeout-s']) * 1000;
  const modes = args.waits.split(',').map((w) => (w.trim() === 'none' ? undefined : positiveInt('waits', w.trim(), 0)));
  const retainedPerDevice = positiveInt('retained-per-device', args['retained-per-device']);
  const variants = args.retained.split(',').map((v) => v.trim());
  const rows: Row[] = [];
  for (const variant of variants) {
    if (variant !== 'indexed' && variant !== 'stock') throw new Error(`--retained: expected indexed or stock, got "${variant}"`);
    for (const maxWaitMs of modes) {
      const setup = {
        devices,
        rate: maxWaitMs === undefined ? 0 : rate,
        maxWaitMs: maxWaitMs ?? 0,
        retainedIndex: variant === 'indexed',
        retainedPerDevice,
      };
      const row = await storm(setup, spreadMs, timeoutMs);
      rows.push(row);
      if (!args.json) console.error(`done: ${row.retained} ${row.mode}`);
    }
  }
  if (args.json) console.log(JSON.stringify(rows, null, 2));
  else console.table(rows);
}

async function storm(setup: BrokerSetup, spreadMs: number, timeoutMs: number): Promise<Row> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--broker'], {
    execArgv: [
      ...(process.env.STORM_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.STORM_PROF] : []),
      '--import',
      import.meta.resolve('tsx'),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () => new Promise<BrokerReply>((resolve) => child.once('message', (m) => resolve(m as BrokerReply)));
  const ready = next();
  child.send(setup);
  const { port } = (await ready) as Extract<BrokerReply, { type: 'ready' }>;

  const inAt: number[] = [];
  let attempts = 0;
  let refusedSeen = 0;
  let timedOut = 0;
  const clients: mqtt.MqttClient[] = [];
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const clientLoop = monitorEventLoopDelay({ resolution: 10 });
  clientLoop.enable();
  child.send({ type: 'start' });
  const allIn = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`not all devices in after ${timeoutMs} ms (${inAt.length} of ${setup.devices})`)),
      timeoutMs,
    );
    for (let i = 0; i < setup.devices; i++) {
      let failures = 0;
      let retry: NodeJS.Timeout | undefined;
      let done = false;
      const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
        clientId: `storm-${i}`,
        protocolVersion: 4,
        clean: false,
        keepalive: 30,
        connectTimeout: 10_000,
        reconnectPeriod: 0,
        manualConnect: true,
      });
      clients.push(client);
      const attempt = (first = false) => {
        attempts++;
        if (first) client.connect();
        else client.reconnect();
      };
      client.on('connect', () => {
        failures = 0;
        client.subscribe(desiredTopic(i), { qos: 1 });
      });
      client.on('message', () => {
        if (done) return;
        done = true;
        inAt.push(performance.now() - start);
        if (inAt.length === setup.devices) {
          clearTimeout(timer);
          resolve();
        }
      });
      client.on('error', (err) => {
        if ((err as { code?: unknown }).code === 3) refusedSeen++;
        else if (/timeout/.test(err.message)) timedOut++;
      });
      client.on('close', () => {
        if (done || retry) return;
        retry = setTimeout(
          () => {
            retry = undefined;
            attempt();
          },
          reconnectDelay(failures++, DEFAULT_RECONNECT),
        );
      });
      setTimeout(() => attempt(true), spreadMs > 0 ? Math.random() * spreadMs : 0);
    }
  });
  await allIn;
  const clientsCpu = process.cpuUsage(cpuStart);
  clientLoop.disable();
  const statsReply = next();
  child.send({ type: 'stats' });
  const stats = (await statsReply) as Extract<BrokerReply, { type: 'stats' }>;
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await new Promise((resolve) => child.once('exit', resolve));
  inAt.sort((a, b) => a - b);
  const at = (q: number) => Math.round(inAt[Math.min(inAt.length - 1, Math.floor(q * inAt.length))]! / 100) / 10;
  return {
    retained: setup.retainedIndex ? 'indexed' : 'stock',
    mode: setup.rate === 0 ? 'no limit' : setup.maxWaitMs === 0 ? 'refuse at once' : `hold ≤ ${setup.maxWaitMs} ms`,
    devices: setup.devices,
    rate: setup.rate,
    allInS: Math.round(inAt[inAt.length - 1]! / 100) / 10,
    p50S: at(0.5),
    p90S: at(0.9),
    attempts,
    refusedSeen,
    timedOut,
    refused: stats.refused,
    held: stats.delayed,
    brokerCpuS: Math.round(stats.cpuMs / 100) / 10,
    brokerMaxRssMb: stats.maxRssMb,
    clientsCpuS: Math.round((clientsCpu.user + clientsCpu.system) / 100_000) / 10,
    maxLoopDelayMs: Math.round(stats.maxLoopDelayMs),
    clientsMaxLoopDelayMs: Math.round(clientLoop.max / 1e6),
  };
}
