/**
 * The simulated devices of bench/fanout.ts, run as a process of their own
 * (forked with an IPC channel) so that their CPU is counted apart from the
 * hub's and the driver's.
 *
 * A device here is what the hub sees of an agent and no more: one MQTT
 * connection (bench/telemetry/wire.ts) with the agent's session settings
 * (persistent session, keepalive, the retained offline will), a subscription
 * to its desired topic, a retained `online` status, and a retained state
 * report. On each desired document it acknowledges the way the agent's
 * reconciler does once it took the document: a retained state report whose
 * `observedRevision` is the document's revision, every app in it reported
 * `running` at its revision (the agent would get there through pending and
 * pulling; here the engine is instant). The hub counts a device as having
 * taken a revision from that report (the dispatcher's ingestState).
 *
 * Every `verifyEvery`-th device checks the hub's Ed25519 signature on what
 * it receives (an agent with a pinned key checks them all: ~50 µs each,
 * which for 10,000 devices in one process would be the simulator's CPU,
 * not the hub's); a document that does not verify is counted, never acked.
 *
 * Times are wall-clock milliseconds (performance.timeOrigin + now), so the
 * driver can subtract the moment of its apply taken in another process.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { cpuUsage } from 'node:process';
import { DEFAULT_TOPIC_ROOT, type DesiredState, type DeviceState, Topics, verifyDesired } from '../../shared/index.js';
import { AGENT_PROTOCOL_VERSION } from '../../shared/protocol-version.js';
import { WireClient } from '../telemetry/wire.js';

export type SimCommand =
  | {
      type: 'start';
      host: string;
      port: number;
      ids: string[];
      /** New connections per second from this process. */
      connectRate: number;
      hubKeyPem: string;
      verifyEvery: number;
      keepaliveSeconds: number;
      /** A persistent session, as the agent connects (false: clean sessions). */
      persistent: boolean;
      labels: Record<string, string>;
      /**
       * A broker without a hub (the raw-Aedes reference): nobody issues
       * documents, so each device retains one of a hub's size on its own
       * desired topic itself, and is in once that and its reports are taken.
       */
      noHub: boolean;
    }
  /** From now on, record when each device receives and acknowledges a document with this app in it. */
  | { type: 'watch'; app: string }
  | { type: 'report' }
  | { type: 'stop' };

export interface WatchReport {
  /** Wall-clock ms when each device received its document with the app / got the PUBACK for its acknowledgement; 0: not yet (IPC's JSON has no NaN). */
  receivedAt: number[];
  ackedAt: number[];
  /** Documents whose signature did not verify (never acknowledged). */
  badSignatures: number;
  /** Devices whose connection closed. */
  closed: number;
  /** CPU (user + system) of this process since the watch began, ms. */
  cpuMs: number;
}

export type SimReply =
  | { type: 'ready'; connectMs: number; cpuMs: number }
  | ({ type: 'report' } & WatchReport)
  | { type: 'error'; message: string };

const topics = new Topics(DEFAULT_TOPIC_ROOT);
const wallNow = () => performance.timeOrigin + performance.now();

interface Device {
  id: string;
  client: WireClient;
  stateTopic: Buffer;
  verify: boolean;
  /** The newest revision acknowledged (0: none yet). */
  acked: number;
  /** The revision of the state report whose PUBACK is outstanding (undefined: none; the agent keeps one in flight). */
  inFlight: DesiredState | undefined | null;
  /** A report of an issued revision was acknowledged (the fleet is in once every device has one). */
  counted: boolean;
  /** A newer document arrived while a report was in flight. */
  pending: DesiredState | undefined;
  index: number;
}

let devices: Device[] = [];
let hubKey: KeyObject | undefined;
let labels: Record<string, string> = {};
let watch: { app: string; receivedAt: number[]; ackedAt: number[]; cpu: NodeJS.CpuUsage } | undefined;
let badSignatures = 0;
let firstAcks: { waiting: number; done: () => void } | undefined;

function send(reply: SimReply): void {
  process.send?.(reply);
}

function host(): DeviceState['host'] {
  return { hostname: 'sim', os: 'linux', arch: 'x64', agentVersion: 'sim', nodeVersion: process.versions.node };
}

function report(device: Device, desired: DesiredState | undefined): void {
  const state: DeviceState = {
    deviceId: device.id,
    observedRevision: desired?.revision ?? 0,
    reportedAt: new Date().toISOString(),
    host: host(),
    labels,
    apps: (desired?.apps ?? []).map((app) => ({ name: app.name, revision: app.revision, phase: 'running', containers: [] })),
  };
  device.inFlight = desired ?? null;
  device.client.publish(device.stateTopic, JSON.stringify(state), true);
}

function onDesired(device: Device, payload: Buffer): void {
  // A retained document cleared by the hub is empty.
  if (payload.length === 0) return;
  let desired: DesiredState;
  try {
    desired = JSON.parse(payload.toString()) as DesiredState;
  } catch {
    badSignatures++;
    return;
  }
  if (device.verify && hubKey && verifyDesired(desired, hubKey) !== undefined) {
    badSignatures++;
    return;
  }
  // As the agent's desired guard: an older or repeated revision is ignored.
  if (desired.revision <= device.acked || desired.revision <= (device.pending?.revision ?? 0)) return;
  if (watch && watch.receivedAt[device.index] === 0 && desired.apps.some((a) => a.name === watch!.app)) {
    watch.receivedAt[device.index] = wallNow();
  }
  if (device.inFlight !== undefined) {
    device.pending = desired;
    return;
  }
  device.acked = desired.revision;
  report(device, desired);
}

function onAck(device: Device): void {
  const reported = device.inFlight;
  device.inFlight = undefined;
  if (reported && watch && watch.ackedAt[device.index] === 0 && reported.apps.some((a) => a.name === watch!.app)) {
    watch.ackedAt[device.index] = wallNow();
  }
  if (reported && !device.counted) {
    device.counted = true;
    if (firstAcks && --firstAcks.waiting === 0) firstAcks.done();
  }
  const next = device.pending;
  if (next) {
    device.pending = undefined;
    device.acked = next.revision;
    report(device, next);
  }
}

async function start(cmd: Extract<SimCommand, { type: 'start' }>): Promise<void> {
  hubKey = createPublicKey(cmd.hubKeyPem);
  labels = cmd.labels;
  const started = performance.now();
  const cpu = cpuUsage();
  const allAcked = new Promise<void>((resolve) => {
    firstAcks = { waiting: cmd.ids.length, done: resolve };
  });
  // Paced: `connectRate` a second, in groups of at most 50 at once.
  const group = Math.max(1, Math.min(50, Math.ceil(cmd.connectRate / 20)));
  for (let first = 0; first < cmd.ids.length; first += group) {
    const due = started + (first / cmd.connectRate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const batch = cmd.ids.slice(first, first + group);
    const connected = await Promise.all(batch.map((id, k) => connectDevice(cmd, id, first + k)));
    devices.push(...connected);
  }
  if (!cmd.noHub) await allAcked;
  else while (devices.some((d) => d.client.inFlight > 0)) await new Promise((resolve) => setTimeout(resolve, 10));
  firstAcks = undefined;
  const used = cpuUsage(cpu);
  send({ type: 'ready', connectMs: performance.now() - started, cpuMs: (used.user + used.system) / 1000 });
}

async function connectDevice(cmd: Extract<SimCommand, { type: 'start' }>, id: string, index: number): Promise<Device> {
  const desiredTopic = topics.device(id, 'desired');
  let device: Device | undefined;
  const client = await WireClient.connect({
    host: cmd.host,
    port: cmd.port,
    clientId: id,
    persistent: cmd.persistent,
    keepaliveSeconds: cmd.keepaliveSeconds,
    will: {
      topic: topics.device(id, 'status'),
      payload: JSON.stringify({ online: false, at: new Date().toISOString(), protocol: AGENT_PROTOCOL_VERSION }),
      retain: true,
    },
    onMessage: (topic, payload) => {
      if (device && topic === desiredTopic) onDesired(device, payload);
    },
    onAcks: (count) => {
      // Status, state reports and (without a hub) the stand-in document are the only publishes, acknowledged in order [MQTT-4.6.0-2].
      for (let i = 0; i < count; i++) {
        if (!device) continue;
        if (statusPending.has(device)) statusPending.delete(device);
        else if (device.inFlight !== undefined) onAck(device);
      }
    },
  });
  device = {
    id,
    client,
    stateTopic: Buffer.from(topics.device(id, 'state')),
    verify: cmd.verifyEvery > 0 && index % cmd.verifyEvery === 0,
    acked: 0,
    inFlight: undefined,
    counted: false,
    pending: undefined,
    index,
  };
  await client.subscribe([desiredTopic]);
  statusPending.add(device);
  client.publish(Buffer.from(topics.device(id, 'status')), JSON.stringify({ online: true, at: new Date().toISOString() }), true);
  // The first report says what the device holds (nothing): the hub issues its first document on it.
  report(device, undefined);
  if (cmd.noHub) client.publish(Buffer.from(desiredTopic), JSON.stringify(standInDocument(id)), true);
  return device;
}

const statusPending = new Set<Device>();

/** A document the size of the hub's first one for a device (no apps, signed): what the hub would retain on its desired topic. */
function standInDocument(deviceId: string): DesiredState {
  return {
    deviceId,
    revision: 1,
    issuedAt: new Date().toISOString(),
    apps: [],
    signature: { alg: 'ed25519', value: Buffer.alloc(64, 7).toString('base64') },
  };
}

function watchReport(): WatchReport {
  const used = watch ? cpuUsage(watch.cpu) : { user: 0, system: 0 };
  return {
    receivedAt: watch?.receivedAt ?? [],
    ackedAt: watch?.ackedAt ?? [],
    badSignatures,
    closed: devices.filter((d) => !d.client.open).length,
    cpuMs: (used.user + used.system) / 1000,
  };
}

process.on('message', (cmd: SimCommand) => {
  const run = async () => {
    if (cmd.type === 'start') await start(cmd);
    else if (cmd.type === 'watch') {
      watch = {
        app: cmd.app,
        receivedAt: devices.map(() => 0),
        ackedAt: devices.map(() => 0),
        cpu: cpuUsage(),
      };
      badSignatures = 0;
    } else if (cmd.type === 'report') send({ type: 'report', ...watchReport() });
    else {
      for (const d of devices) d.client.close();
      devices = [];
      process.disconnect();
    }
  };
  run().catch((err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
});
// The parent is gone (Ctrl-C, crash): so are the devices.
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => {});
