/**
 * The load generator of bench/telemetry-ingest.ts, run as its own process
 * (forked with an IPC channel) so that it does not share an event loop with
 * the broker under test or with the latency probe.
 *
 * Simulated devices, one MQTT connection each (client id = device id), each
 * announcing itself with `…/status` and then publishing at QoS 1: 90% log
 * batches of 1–5 lines (3 on average), 10% metrics samples, one seq counter
 * per device for both (as the agent does). At most `window` publishes per
 * device are waiting for their PUBACK (the agent's MAX_LOG_BATCHES_IN_FLIGHT
 * is 8); a device with a full window sends nothing more until acks arrive.
 *
 * Steps: `{ type: 'step', rate, durationMs }` offers `rate` messages/s spread
 * round-robin over the devices (rate 0 = as fast as the windows allow) and
 * answers `{ type: 'stepDone', … }`. A generator that falls behind (windows
 * full) carries at most BACKLOG_S of unsent offer, so a stalled broker is not
 * followed by an unbounded burst; what was not sent is reported, not hidden.
 */
import { cpuUsage } from 'node:process';
import { DEFAULT_TOPIC_ROOT, Topics } from '../../shared/index.js';
import { logBatch, METRICS_EVERY, metricsSample } from './payloads.js';
import { WireClient } from './wire.js';

export type LoadCommand =
  | { type: 'start'; host: string; port: number; devices: number; window: number; idPrefix: string }
  | { type: 'step'; rate: number; durationMs: number }
  | { type: 'stats' }
  | { type: 'stop' };

export interface LoadStats {
  /** Publishes written to the broker since start. */
  sent: number;
  acked: number;
  inFlight: number;
  /** Generator CPU (user + system) since start, ms. */
  cpuMs: number;
}

export type LoadReply =
  | { type: 'ready'; deviceIds: string[] }
  | ({ type: 'stepDone'; offered: number; shed: number } & LoadStats)
  | ({ type: 'stats' } & LoadStats)
  | { type: 'error'; message: string };

const TICK_MS = 2;
const BACKLOG_S = 0.5;

interface Device {
  id: string;
  client: WireClient;
  logs: Buffer;
  metrics: Buffer;
  seq: number;
}

const topics = new Topics(DEFAULT_TOPIC_ROOT);
let devices: Device[] = [];
let window = 8;
let started = cpuUsage();
let nowIso = new Date().toISOString();

function send(reply: LoadReply): void {
  process.send?.(reply);
}

function stats(): LoadStats {
  let sent = 0;
  let acked = 0;
  let inFlight = 0;
  for (const d of devices) {
    sent += d.client.sent;
    acked += d.client.acked;
    inFlight += d.client.inFlight;
  }
  const cpu = cpuUsage(started);
  return { sent, acked, inFlight, cpuMs: (cpu.user + cpu.system) / 1000 };
}

function publishNext(device: Device): void {
  const seq = device.seq++;
  if (seq % METRICS_EVERY === METRICS_EVERY - 1) device.client.publish(device.metrics, JSON.stringify(metricsSample(seq, nowIso)));
  else device.client.publish(device.logs, JSON.stringify(logBatch(device.id, seq, nowIso)));
}

async function start(cmd: Extract<LoadCommand, { type: 'start' }>): Promise<void> {
  window = cmd.window;
  const width = String(cmd.devices - 1).length;
  const ids = Array.from({ length: cmd.devices }, (_, i) => `${cmd.idPrefix}-${String(i).padStart(width, '0')}`);
  // Connect in groups: a few hundred simultaneous CONNECTs only measure the accept queue.
  for (let i = 0; i < ids.length; i += 50) {
    const group = await Promise.all(
      ids.slice(i, i + 50).map(async (id) => {
        const client = await WireClient.connect({ host: cmd.host, port: cmd.port, clientId: id, onAcks: schedulePump });
        return { id, client, logs: Buffer.from(topics.device(id, 'logs')), metrics: Buffer.from(topics.device(id, 'metrics')), seq: 0 };
      }),
    );
    devices.push(...group);
  }
  for (const d of devices) d.client.publish(Buffer.from(topics.device(d.id, 'status')), JSON.stringify({ online: true, at: nowIso }));
  while (devices.some((d) => d.client.inFlight > 0)) await new Promise((resolve) => setTimeout(resolve, 10));
  // From here on, `sent` counts telemetry only.
  for (const d of devices) {
    d.client.sent = 0;
    d.client.acked = 0;
  }
  started = cpuUsage();
  send({ type: 'ready', deviceIds: ids });
}

// ---- stepping ---------------------------------------------------------------------------

let step: { rate: number; startedAt: number; offered: number; shed: number; next: number } | undefined;
let pumpScheduled = false;

function schedulePump(): void {
  if (!step || pumpScheduled) return;
  pumpScheduled = true;
  setImmediate(pump);
}

/** Sends what is due (rate mode) or fills every window (max mode), round-robin over the devices. */
function pump(): void {
  pumpScheduled = false;
  if (!step) return;
  let budget = Number.POSITIVE_INFINITY;
  if (step.rate > 0) {
    const due = Math.floor((step.rate * (performance.now() - step.startedAt)) / 1000);
    const backlog = due - step.offered;
    const cap = step.rate * BACKLOG_S;
    if (backlog > cap) {
      step.shed += backlog - cap;
      step.offered += backlog - cap;
    }
    budget = due - step.offered;
  }
  const count = devices.length;
  let idle = 0;
  while (budget > 0 && idle < count) {
    const device = devices[step.next]!;
    step.next = (step.next + 1) % count;
    if (device.client.inFlight >= window || !device.client.open) {
      idle++;
      continue;
    }
    idle = 0;
    publishNext(device);
    budget--;
    if (step.rate > 0) step.offered++;
  }
}

async function runStep(cmd: Extract<LoadCommand, { type: 'step' }>): Promise<void> {
  const before = stats();
  step = { rate: cmd.rate, startedAt: performance.now(), offered: 0, shed: 0, next: 0 };
  const ticker = setInterval(() => {
    nowIso = new Date().toISOString();
    pump();
  }, TICK_MS);
  await new Promise((resolve) => setTimeout(resolve, cmd.durationMs));
  clearInterval(ticker);
  const done = step;
  step = undefined;
  const after = stats();
  send({
    type: 'stepDone',
    offered: done.rate > 0 ? done.offered : after.sent - before.sent,
    shed: done.shed,
    ...after,
  });
}

process.on('message', (cmd: LoadCommand) => {
  const run = async () => {
    if (cmd.type === 'start') await start(cmd);
    else if (cmd.type === 'step') await runStep(cmd);
    else if (cmd.type === 'stats') send({ type: 'stats', ...stats() });
    else {
      for (const d of devices) d.client.close();
      devices = [];
      process.disconnect();
    }
  };
  run().catch((err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
});
// The parent is gone (Ctrl-C, crash): so is the load.
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => {});
