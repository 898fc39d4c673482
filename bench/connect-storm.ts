/**
 * Reconnect storm: N devices connect at once to a broker with connection
 * admission (broker/mqtt/admission.ts), and each retries like the agent does
 * (exponential backoff with full jitter, 1 s window doubling to 60 s,
 * connect timeout 10 s, persistent session). Compares admission modes: no
 * limit, refuse at once, and hold up to W ms for a token before refusing.
 *
 *   npx tsx bench/connect-storm.ts [--devices 2000] [--rate 200] [--waits none,0,250,1000,5000] [--spread-ms 0]
 *                                  [--retained indexed,stock] [--retained-per-device 1]
 *                                  [--auth off,anonymous,credentials] [--runs 1] [--warm] [--json]
 *
 * --retained compares the broker's exact-topic retained index
 * (broker/mqtt/retained-index.ts) with Aedes' stock scan of every retained
 * topic per SUBSCRIBE; --retained-per-device 3 retains a state and a status
 * document beside each desired one, as a real fleet does.
 *
 * --auth puts the hub's access control (broker/mqtt/access.ts, the
 * Authenticator over a real SQLite hub.db) in front of the broker, chained
 * before admission as broker/hub.ts does: `anonymous` lets devices in
 * without credentials (allowAnonymous), `credentials` refuses anonymous
 * clients and each device logs in with username = its id and password = its
 * secret. The devices are registered before the broker starts, through the
 * store classes (DeviceCredentialStore.create with hashSecret's scrypt hash,
 * what POST /api/v1/register stores), so the storm meets a cold cache of
 * verified secrets, as after a hub restart. `off` (the default) is no access
 * control at all, as in the earlier runs. --warm storms a second time
 * against the same broker process (persistent sessions kept, cache hot).
 * --runs repeats the whole set of configurations, alternating.
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
 * unavailable", and attempts abandoned after the 10 s connect timeout. With
 * --auth: login p50/p90/max ms (the authenticate hook, CONNECT accepted by
 * admission → verdict, so it includes queueing for the thread pool), scrypt
 * calls during the storm and the average call → callback time, and scrypt CPU
 * s estimated as calls × one hash's time measured alone in the broker process
 * before the storm.
 */

import { type ChildProcess, fork } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AedesOptions } from 'aedes';
import mqtt from 'mqtt';
import pino from 'pino';
import { DEFAULT_RECONNECT, reconnectDelay } from '../agent/reconnect-backoff.js';
import { Authenticator } from '../broker/auth/authenticator.js';
import { hashSecret, randomToken, verifySecret } from '../broker/auth/hashing.js';
import { createAccessControl } from '../broker/mqtt/access.js';
import { createConnectionAdmission } from '../broker/mqtt/admission.js';
import { startBroker } from '../broker/mqtt/broker.js';
import { chainPreConnect } from '../broker/mqtt/hooks.js';
import { SqliteAccountStore } from '../broker/store/sqlite/accounts.js';
import { openDatabase } from '../broker/store/sqlite/db.js';
import { SqliteDeviceCredentialStore } from '../broker/store/sqlite/device-credentials.js';
import { Topics } from '../shared/index.js';
import { Signal } from '../shared/signal.js';
import { positiveInt } from './int-arg.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '200' },
    waits: { type: 'string', default: 'none,0,250,1000,5000' },
    'spread-ms': { type: 'string', default: '0' },
    retained: { type: 'string', default: 'indexed' },
    'retained-per-device': { type: 'string', default: '1' },
    auth: { type: 'string', default: 'off' },
    runs: { type: 'string', default: '1' },
    warm: { type: 'boolean', default: false },
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
  auth: AuthMode;
  /** Device i's secret (auth `credentials`). */
  secrets: string[];
}
type AuthMode = 'off' | 'anonymous' | 'credentials';
const AUTH_MODES: readonly AuthMode[] = ['off', 'anonymous', 'credentials'];

interface AuthStats {
  /** Registration before the broker starts: hashing every secret and storing it. */
  registerMs: number;
  /** One scrypt verification alone in this process (median of 20), before the storm. */
  hashMs: number;
  logins: number;
  loginP50Ms: number;
  loginP90Ms: number;
  loginMaxMs: number;
  scryptCalls: number;
  scryptTotalMs: number;
}
type BrokerReply =
  | { type: 'ready'; port: number }
  | {
      type: 'stats';
      cpuMs: number;
      maxRssMb: number;
      maxLoopDelayMs: number;
      admitted: number;
      refused: number;
      delayed: number;
      auth?: AuthStats;
    };

if (args.broker) {
  process.once('message', (setup: BrokerSetup) => void runBroker(setup));
} else {
  if (args.help) {
    console.log(
      'usage: npx tsx bench/connect-storm.ts [--devices N] [--rate R] [--waits none,0,250,1000] [--spread-ms MS] [--retained indexed,stock]\n' +
        '         [--retained-per-device N] [--auth off,anonymous,credentials] [--runs R] [--warm] [--timeout-s S] [--json]',
    );
    process.exit(0);
  }
  await main();
}

/** Counts scrypt calls in this process, and their call → callback time (thread-pool queueing included). */
function countScrypt(): { calls: number; totalMs: number } {
  const counts = { calls: 0, totalMs: 0 };
  const original = crypto.scrypt;
  const counted = (...params: unknown[]) => {
    const callback = params.pop() as (err: Error | null, key: Buffer) => void;
    const start = performance.now();
    counts.calls++;
    (original as (...p: unknown[]) => void)(...params, (err: Error | null, key: Buffer) => {
      counts.totalMs += performance.now() - start;
      callback(err, key);
    });
  };
  crypto.scrypt = counted as typeof crypto.scrypt;
  // hashing.ts imports `scrypt` by name: a live binding, updated here.
  syncBuiltinESMExports();
  return counts;
}

async function runBroker(setup: BrokerSetup): Promise<void> {
  const logger = pino({ level: 'silent' });
  const scryptCounts = countScrypt();
  const admission = createConnectionAdmission({ rate: setup.rate, maxWaitMs: setup.maxWaitMs, logger });
  const dataDir = mkdtempSync(join(tmpdir(), 'connect-storm-'));
  const db = setup.auth === 'off' ? undefined : openDatabase(join(dataDir, 'hub.db'));
  let hooks: BrokerHooks = { preConnect: admission.preConnect };
  const logins: number[] = [];
  let registerMs = 0;
  let hashMs = 0;
  if (db) {
    const accounts = new SqliteAccountStore(db);
    const credentials = new SqliteDeviceCredentialStore(db);
    if (setup.auth === 'credentials') {
      const registerStart = performance.now();
      const hashes = await Promise.all(setup.secrets.map((secret) => hashSecret(secret)));
      db.transaction(() => {
        for (const [i, hash] of hashes.entries()) credentials.create(deviceId(i), hash);
      })();
      registerMs = performance.now() - registerStart;
      const times: number[] = [];
      for (let k = 0; k < 20; k++) {
        const start = performance.now();
        await verifySecret(setup.secrets[0]!, hashes[0]!);
        times.push(performance.now() - start);
      }
      hashMs = times.sort((a, b) => a - b)[10]!;
    }
    const authenticator = new Authenticator({
      accounts,
      credentials,
      readOnlyUsers: [],
      allowAnonymous: setup.auth === 'anonymous',
    });
    const access = createAccessControl({
      authenticator,
      owners: {
        isRegisteredDevice: async (id) => (await credentials.get(id)) !== undefined,
        isAccount: async (name) => (await accounts.get(name)) !== undefined,
      },
      topics: new Topics(),
      logger,
      // Nothing in the storm calls the API.
      answers: new Signal(() => undefined),
    });
    hooks = {
      ...access,
      // As broker/hub.ts chains them; a login starts once admission let the CONNECT through.
      preConnect: chainPreConnect(access.preConnect, admission.preConnect),
      authenticate(client, username, password, done) {
        const start = performance.now();
        access.authenticate(client, username, password, (err, ok) => {
          logins.push(performance.now() - start);
          done(err, ok);
        });
      },
    };
  }
  const broker = await startBroker({
    host: '127.0.0.1',
    mqttPort: 0,
    wsPort: 0,
    logger,
    hooks,
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
  let countersStart = admission.counters();
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'start') {
      cpuStart = process.cpuUsage();
      countersStart = admission.counters();
      logins.length = 0;
      scryptCounts.calls = 0;
      scryptCounts.totalMs = 0;
      loop.reset();
      loop.enable();
    } else if (msg.type === 'stats') {
      const cpu = process.cpuUsage(cpuStart);
      loop.disable();
      const counters = admission.counters();
      // maxRSS is the process's peak since it started (KiB): the retained documents plus the storm(s).
      const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
      logins.sort((a, b) => a - b);
      const q = (f: number) => Math.round(logins[Math.min(logins.length - 1, Math.floor(f * logins.length))] ?? 0);
      send({
        type: 'stats',
        cpuMs: (cpu.user + cpu.system) / 1000,
        maxRssMb,
        maxLoopDelayMs: loop.max / 1e6,
        admitted: counters.admitted - countersStart.admitted,
        refused: counters.refused - countersStart.refused,
        delayed: counters.delayed - countersStart.delayed,
        ...(db && {
          auth: {
            registerMs,
            hashMs,
            logins: logins.length,
            loginP50Ms: q(0.5),
            loginP90Ms: q(0.9),
            loginMaxMs: q(1),
            scryptCalls: scryptCounts.calls,
            scryptTotalMs: scryptCounts.totalMs,
          },
        }),
      });
    } else if (msg.type === 'close') {
      admission.close();
      void broker.close().then(() => {
        db?.close();
        rmSync(dataDir, { recursive: true, force: true });
        process.exit(0);
      });
    }
  });
  send({ type: 'ready', port: broker.mqttPort });
}

type BrokerHooks = Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>;

function send(reply: BrokerReply): void {
  process.send?.(reply);
}

function deviceId(i: number): string {
  return `storm-${i}`;
}

function desiredTopic(i: number): string {
  return `flotilla/v1/devices/${deviceId(i)}/desired`;
}

/** Retained document n: every device's desired first, then their state and status. */
function retainedTopic(n: number, devices: number): string {
  const channel = ['desired', 'state', 'status'][Math.floor(n / devices)] ?? 'desired';
  return `flotilla/v1/devices/${deviceId(n % devices)}/${channel}`;
}

interface Row {
  auth: AuthMode;
  /** cold: the broker process's first storm; warm: its second (sessions and verified secrets kept). */
  storm: 'cold' | 'warm';
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
  /** Attempts answered "bad user name or password" / "not authorized" (should be none). */
  authRefusedSeen: number;
  registerS?: number;
  loginP50Ms?: number;
  loginP90Ms?: number;
  loginMaxMs?: number;
  scryptCalls?: number;
  scryptAvgMs?: number;
  scryptCpuS?: number;
  /** One scrypt verification alone in the broker process, ms. */
  hashMs?: number;
}

async function main(): Promise<void> {
  const devices = positiveInt('devices', args.devices);
  const rate = positiveInt('rate', args.rate);
  const spreadMs = positiveInt('spread-ms', args['spread-ms'], 0);
  const timeoutMs = positiveInt('timeout-s', args['timeout-s']) * 1000;
  const modes = args.waits.split(',').map((w) => (w.trim() === 'none' ? undefined : positiveInt('waits', w.trim(), 0)));
  const retainedPerDevice = positiveInt('retained-per-device', args['retained-per-device']);
  const variants = args.retained.split(',').map((v) => v.trim());
  const auths = args.auth.split(',').map((a) => a.trim());
  for (const auth of auths) {
    if (!AUTH_MODES.includes(auth as AuthMode)) throw new Error(`--auth: expected off, anonymous or credentials, got "${auth}"`);
  }
  for (const variant of variants) {
    if (variant !== 'indexed' && variant !== 'stock') throw new Error(`--retained: expected indexed or stock, got "${variant}"`);
  }
  const runs = positiveInt('runs', args.runs);
  const rows: Row[] = [];
  for (let run = 0; run < runs; run++) {
    for (const auth of auths as AuthMode[]) {
      for (const variant of variants) {
        for (const maxWaitMs of modes) {
          const setup: BrokerSetup = {
            devices,
            rate: maxWaitMs === undefined ? 0 : rate,
            maxWaitMs: maxWaitMs ?? 0,
            retainedIndex: variant === 'indexed',
            retainedPerDevice,
            auth,
            secrets: auth === 'credentials' ? Array.from({ length: devices }, () => randomToken(32)) : [],
          };
          for (const row of await storms(setup, spreadMs, timeoutMs, args.warm)) {
            rows.push(row);
            // The whole row on stderr too: a long set of runs keeps what it measured if it is stopped.
            console.error(`done: run ${run + 1} ${row.auth} ${row.storm} ${row.retained} ${row.mode}: ${JSON.stringify(row)}`);
          }
        }
      }
    }
  }
  if (args.json) console.log(JSON.stringify(rows, null, 2));
  else console.table(rows);
}

/** One broker process: a storm against a cold broker, then (warm) a second one against the same process. */
async function storms(setup: BrokerSetup, spreadMs: number, timeoutMs: number, warm: boolean): Promise<Row[]> {
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
  const rows = [await storm(child, next, port, setup, spreadMs, timeoutMs, 'cold')];
  if (warm) rows.push(await storm(child, next, port, setup, spreadMs, timeoutMs, 'warm'));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send({ type: 'close' });
  await exited;
  return rows;
}

async function storm(
  child: ChildProcess,
  next: () => Promise<BrokerReply>,
  port: number,
  setup: BrokerSetup,
  spreadMs: number,
  timeoutMs: number,
  phase: Row['storm'],
): Promise<Row> {
  const inAt: number[] = [];
  let attempts = 0;
  let refusedSeen = 0;
  let timedOut = 0;
  let authRefusedSeen = 0;
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
        clientId: deviceId(i),
        ...(setup.auth === 'credentials' ? { username: deviceId(i), password: setup.secrets[i]! } : {}),
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
        const code = (err as { code?: unknown }).code;
        if (code === 3) refusedSeen++;
        else if (code === 4 || code === 5) authRefusedSeen++;
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
  inAt.sort((a, b) => a - b);
  const at = (q: number) => Math.round(inAt[Math.min(inAt.length - 1, Math.floor(q * inAt.length))]! / 100) / 10;
  const auth = stats.auth;
  return {
    auth: setup.auth,
    storm: phase,
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
    authRefusedSeen,
    ...(auth && {
      loginP50Ms: auth.loginP50Ms,
      loginP90Ms: auth.loginP90Ms,
      loginMaxMs: auth.loginMaxMs,
    }),
    ...(auth &&
      setup.auth === 'credentials' && {
        registerS: Math.round(auth.registerMs / 100) / 10,
        scryptCalls: auth.scryptCalls,
        scryptAvgMs: auth.scryptCalls === 0 ? 0 : Math.round((auth.scryptTotalMs / auth.scryptCalls) * 10) / 10,
        scryptCpuS: Math.round((auth.scryptCalls * auth.hashMs) / 100) / 10,
        hashMs: Math.round(auth.hashMs * 100) / 100,
      }),
  };
}
