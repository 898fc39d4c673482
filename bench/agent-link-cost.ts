/**
 * What one agent costs its device's disk and its link, online and offline,
 * measured on a real agent process, a real hub process and the real Docker
 * Engine.
 *
 *   npx tsx bench/agent-link-cost.ts [--online-s 300] [--offline-s 300] [--settle-s 30] [--drain-timeout-s 180] [--recreate 1] [--json]
 *   npx tsx bench/agent-link-cost.ts --link-only [--online-s 120] [--settle-s 20] [--baseline-args "--log-batch-window 250ms --telemetry-encoding off"]
 *
 * Setup: `flotilla server` (temp data dir) and one `flotilla agent` at its
 * default settings (but for --device-id, --hub-url, --data-dir), three apps
 * applied with `flotilla apply -f` (bench/link/apps.ts: busybox containers
 * printing one numbered line every 2 s, 5 s and 10 s). Between the agent and
 * the hub's MQTT port sits a counting proxy (bench/link/mqtt-meter.ts) that
 * parses the MQTT packets both ways and can cut the link. A subscriber on the
 * hub's port (not through the proxy) sees `flotilla/v1/devices/<id>/#`.
 *
 * Phase 1, `--outbox` at its default (`<data-dir>/outbox.db`):
 *   1. apply, wait until every app runs, settle (`--settle-s`);
 *   2. online window (`--online-s`): the agent's /proc/<pid>/io write_bytes,
 *      which files it modified (inotify; and the log ledger's saves in its
 *      RAM directory under /dev/shm, which reach no disk), MQTT bytes and
 *      packets by kind through the proxy, the socket's TCP segments (`ss`);
 *   3. offline window (`--offline-s`): the proxy cuts the link and refuses
 *      reconnects; halfway, `docker rm -f` of tick-10s's container (with
 *      `--recreate 1`) so the agent has events to keep (created, started);
 *   4. the proxy lets the agent in again: time until it reconnects (its
 *      backoff), time until the backlog is delivered (every telemetry seq
 *      after the cut received by the subscriber), resent copies; then the
 *      hub's logs and events are checked: every line exactly once
 *      (bench/link/apps.ts), every event seq once, nothing behind `docker logs`.
 * Phase 2: the agent restarted with `--outbox memory`, settle, then the same
 * offline window and checks: the baseline for what the file outbox costs.
 *
 * With `--link-only` there is no offline phase: two online windows in one
 * run, the agent first with `--baseline-args` (default: the link as it was
 * before batching with the metrics sample and compression, i.e. a 250 ms
 * batch window and plain JSON), then restarted at its defaults, and the
 * bytes on the link of both side by side, by component, with the TCP/IP
 * headers of the segments `ss` counted, and how long a line took from
 * Docker's timestamp to the hub's subscriber.
 *
 * Per-hour and per-day figures are the window's numbers scaled up. The
 * process exits by itself; Ctrl-C stops the agent and the hub, removes the
 * containers and the temp dirs. Loopback only.
 */
import { execFile } from 'node:child_process';
import { existsSync, type FSWatcher, mkdtempSync, rmSync, watch, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import Database from 'better-sqlite3';
import Dockerode from 'dockerode';
import mqtt, { type MqttClient } from 'mqtt';
import { defaultLedgerDir, LEDGER_FILE_NAME } from '../agent/telemetry/logs/ledger-files.js';
import { DEFAULT_TOPIC_ROOT } from '../shared/index.js';
import type { EventRecord, LogRecord } from '../shared/telemetry-api.js';
import { ensureTestImages } from '../test/e2e/support/images.js';
import { type HubProcess, type ManagedProcess, runCli, spawnCli, startHubProcess, stopAll } from '../test/support/processes.js';
import { positiveInt } from './int-arg.js';
import { APPS, appsYaml, checkLines, type LineCheck, parseLine } from './link/apps.js';
import { type DirectionStats, diffStats, type MeterStats, type MqttMeter, startMqttMeter } from './link/mqtt-meter.js';
import {
  diffCounts,
  diffIo,
  fileSizes,
  type ProcIo,
  readProcIo,
  type TcpCounters,
  tcpCounters,
  type WriteWatcher,
  watchWrites,
} from './link/process-io.js';
import { releasesOnExit } from './releases.js';

const { values } = parseArgs({
  options: {
    'online-s': { type: 'string', default: '300' },
    'offline-s': { type: 'string', default: '300' },
    'settle-s': { type: 'string', default: '30' },
    'drain-timeout-s': { type: 'string', default: '180' },
    recreate: { type: 'string', default: '1' },
    'link-only': { type: 'boolean', default: false },
    'baseline-args': { type: 'string', default: '--log-batch-window 250ms --telemetry-encoding off' },
    json: { type: 'boolean', default: false },
  },
});
const onlineMs = positiveInt('online-s', values['online-s'], 10) * 1000;
const offlineMs = positiveInt('offline-s', values['offline-s'], 10) * 1000;
const settleMs = positiveInt('settle-s', values['settle-s'], 0) * 1000;
const drainTimeoutMs = positiveInt('drain-timeout-s', values['drain-timeout-s'], 10) * 1000;
const recreate = positiveInt('recreate', values.recreate, 0) > 0;

const run = Date.now().toString(36);
const DEVICE_PREFIX = 'bench-link-';
const deviceId = `${DEVICE_PREFIX}${run}`;
const docker = new Dockerode();
const exec = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (text: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${text}`);

// ---------------------------------------------------------------------------
// What the subscriber on the hub saw.

interface Seen {
  /** Arrival (Date.now()). */
  at: number;
  channel: string;
  bytes: number;
  /** Telemetry seq (logs, metrics: one counter) or event seq. */
  seq?: number;
  /** When the message was made: newest line's Docker timestamp, sample or event ts. */
  madeAt?: number;
  body: Record<string, unknown>;
}

const seen: Seen[] = [];

function record(topic: string, payload: Buffer, retained: boolean): void {
  if (retained) return;
  const channel = topic.slice(topic.lastIndexOf('/') + 1);
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(payload.toString()) as Record<string, unknown>;
  } catch {
    // an empty retained clear, or garbage: counted by size only
  }
  const lines = body.lines as { ts: string }[] | undefined;
  const ts = channel === 'logs' ? lines?.at(-1)?.ts : ((body.ts ?? body.reportedAt ?? body.at) as string | undefined);
  seen.push({
    at: Date.now(),
    channel,
    bytes: payload.length,
    seq: typeof body.seq === 'number' ? body.seq : undefined,
    madeAt: ts ? Date.parse(ts) : undefined,
    body,
  });
}

/** Adds a message to its channel's count. */
function tally(into: Record<string, { messages: number; bytes: number }>, m: Seen): void {
  const t = into[m.channel] ?? { messages: 0, bytes: 0 };
  t.messages++;
  t.bytes += m.bytes;
  into[m.channel] = t;
}

/** What goes through the outbox (state and status do not: only the newest state is kept). */
const OUTBOX_CHANNELS = new Set(['events', 'logs', 'metrics']);

/** A container's `status` in a state report: Docker's human text, "Up 5 minutes". */
const STATUS_PATH = '.apps[].containers[].status';

const isTelemetry = (m: Seen) => m.channel === 'logs' || m.channel === 'metrics';

// ---------------------------------------------------------------------------
// Resources, released in reverse order on the way out (Ctrl-C too).

const releases = releasesOnExit(say);

/** Containers of this device, or of any earlier run of this benchmark (`all`: their names would collide with this run's). */
async function removeContainers(all: boolean): Promise<number> {
  const mine = await docker.listContainers({ all: true, filters: { label: ['flotilla.device'] } });
  const ours = mine.filter((c) => {
    const device = c.Labels['flotilla.device'] ?? '';
    return all ? device.startsWith(DEVICE_PREFIX) : device === deviceId;
  });
  for (const c of ours) await docker.getContainer(c.Id).remove({ force: true, v: true });
  return ours.length;
}

// ---------------------------------------------------------------------------

interface Snapshot {
  at: number;
  io: ProcIo;
  meter: MeterStats;
  tcp: TcpCounters | undefined;
  writes: Record<string, number>;
  stdoutBytes: number;
  seen: number;
}

interface Context {
  hub: HubProcess;
  meter: MqttMeter;
  agentDir: string;
  writes: WriteWatcher;
  /** The log ledger's saves in RAM (not the disk's): where the write-ahead record went. */
  ledgerSaves: WriteWatcher;
  agent: ManagedProcess;
  since: string;
}

const NO_WATCHER: WriteWatcher = { counts: () => ({}), close: () => undefined };

/**
 * Counts the log ledger's saves in its default RAM directory (each is a
 * rename onto the file); nothing where the agent keeps no ledger there.
 * The directory goes at a clean stop: watch again after a restart.
 */
function watchLedgerSaves(agentDir: string): WriteWatcher {
  const dir = defaultLedgerDir(agentDir, deviceId);
  if (dir === undefined || !existsSync(dir)) return NO_WATCHER;
  let saves = 0;
  const watcher: FSWatcher = watch(dir, (event, name) => {
    if (event === 'rename' && name === LEDGER_FILE_NAME) saves++;
  });
  watcher.on('error', () => undefined);
  return {
    counts: (): Record<string, number> => (saves > 0 ? { [`${LEDGER_FILE_NAME} in RAM (saves)`]: saves } : {}),
    close: () => watcher.close(),
  };
}

/** What the agent's socket sent and received between two snapshots; undefined when `ss` could not tell. */
function tcpBetween(t0: Snapshot, t1: Snapshot): TcpCounters | undefined {
  if (!t0.tcp || !t1.tcp) return undefined;
  return {
    segsOut: t1.tcp.segsOut - t0.tcp.segsOut,
    segsIn: t1.tcp.segsIn - t0.tcp.segsIn,
    bytesSent: t1.tcp.bytesSent - t0.tcp.bytesSent,
    bytesReceived: t1.tcp.bytesReceived - t0.tcp.bytesReceived,
  };
}

function snapshot(ctx: Context): Snapshot {
  return {
    at: Date.now(),
    io: readProcIo(ctx.agent.child.pid!),
    meter: ctx.meter.stats(),
    tcp: tcpCounters(ctx.meter.port),
    writes: { ...ctx.writes.counts(), ...ctx.ledgerSaves.counts() },
    stdoutBytes: Buffer.byteLength(ctx.agent.output),
    seen: seen.length,
  };
}

interface Window {
  label: string;
  seconds: number;
  io: ProcIo;
  files: Record<string, number>;
  stdoutBytes: number;
  sizesAfter: Record<string, number>;
}

function window(label: string, a: Snapshot, b: Snapshot, agentDir: string): Window {
  return {
    label,
    seconds: (b.at - a.at) / 1000,
    io: diffIo(a.io, b.io),
    files: diffCounts(a.writes, b.writes),
    stdoutBytes: b.stdoutBytes - a.stdoutBytes,
    sizesAfter: fileSizes(agentDir),
  };
}

function startAgent(hubUrl: string, agentDir: string, extra: string[]): ManagedProcess {
  return spawnCli('agent', ['agent', '--device-id', deviceId, '--hub-url', hubUrl, '--data-dir', agentDir, ...extra]);
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function allRunning(hub: HubProcess): Promise<boolean> {
  const device = await getJson<{ online: boolean; apps: { name: string; phase: string }[] }>(`${hub.url}/api/v1/devices/${deviceId}`);
  return device.online && APPS.every((app) => device.apps.find((a) => a.name === app.name)?.phase === 'running');
}

/** Every page of a query that returns at most MAX_QUERY_RECORDS, following `afterId`. */
async function pages<T extends { id: number }>(url: (afterId?: number) => string, key: string): Promise<T[]> {
  const out: T[] = [];
  for (let afterId: number | undefined; ; ) {
    const page = (await getJson<Record<string, T[]>>(url(afterId)))[key] ?? [];
    out.push(...page);
    if (page.length < 10_000) return out;
    afterId = page.at(-1)!.id;
  }
}

interface HubCheck {
  lines: LineCheck;
  /** Lines of running containers that `docker logs` has beyond the hub's highest (still on their way). */
  behindDocker: number;
  /** Lines of running containers that `docker logs` has below the hub's highest and the hub does not (with Docker's time). */
  missingVsDocker: { line: string; ts: number }[];
  events: { stored: number; distinctSeqs: number; maxSeq: number; gaps: number };
}

async function checkHub(ctx: Context): Promise<HubCheck> {
  const since = encodeURIComponent(ctx.since);
  const lines = await pages<LogRecord>(
    (afterId) => `${ctx.hub.url}/api/v1/devices/${deviceId}/logs?since=${since}${afterId ? `&afterId=${afterId}` : ''}`,
    'lines',
  );
  const events = await pages<EventRecord>(
    (afterId) => `${ctx.hub.url}/api/v1/events?device=${deviceId}&since=${since}${afterId ? `&afterId=${afterId}` : ''}`,
    'events',
  );
  const lineCheck = checkLines(lines);
  const key = (line: string) => line.split(' level=')[0]!;
  const onHub = new Set(lines.flatMap((l) => (parseLine(l.line) ? [key(l.line)] : [])));
  let behindDocker = 0;
  const missingVsDocker: HubCheck['missingVsDocker'] = [];
  for (const c of await docker.listContainers({ filters: { label: [`flotilla.device=${deviceId}`] } })) {
    const { stdout } = await exec('docker', ['logs', '-t', c.Id], { maxBuffer: 64 * 1024 * 1024 });
    for (const raw of stdout.split('\n')) {
      const space = raw.indexOf(' ');
      const line = raw.slice(space + 1);
      const id = parseLine(line);
      if (!id || onHub.has(key(line))) continue;
      if (id.n > (lineCheck.runs[`${id.app} boot=${id.boot}`] ?? 0)) behindDocker++;
      else missingVsDocker.push({ line: key(line), ts: Date.parse(raw.slice(0, space)) });
    }
  }
  const seqs = new Set(events.map((e) => e.seq));
  const maxSeq = Math.max(0, ...seqs);
  return {
    lines: lineCheck,
    behindDocker,
    missingVsDocker,
    events: { stored: events.length, distinctSeqs: seqs.size, maxSeq, gaps: maxSeq - seqs.size },
  };
}

/** The JSON paths whose values differ between two documents. */
function changedPaths(a: unknown, b: unknown, path = ''): string[] {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b ? [] : [path || '.'];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) =>
    changedPaths((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`.replace(/\.(\d+)(?=\.|$)/g, '[]')),
  );
}

interface Drain {
  /** proxy up → the agent's CONNACK. */
  reconnectS: number;
  /** CONNACK → the last message made before the link came back arrived at the subscriber. */
  drainS: number | undefined;
  confirmed: boolean;
  /** Messages made while offline, delivered after (distinct), by channel. */
  backlog: Record<string, { messages: number; bytes: number }>;
  /** Copies the subscriber saw more than once (resent after the cut). */
  resent: number;
  /** The outbox as the last sample made offline reported it. */
  outboxAtEnd?: { messages: number; bytes: number; dropped: number };
  wire: MeterStats;
  /** The agent's writes from the link's return until the backlog was delivered and one more outbox tick passed. */
  io: ProcIo;
  files: Record<string, number>;
}

/** Cuts the link for `offlineMs`, lets it back, and measures the drain. */
async function offlineWindow(ctx: Context, label: string): Promise<{ window: Window; drain: Drain; check: HubCheck }> {
  const telemetrySeqs = seen.filter(isTelemetry).map((m) => m.seq!);
  const lastSeqBefore = Math.max(...telemetrySeqs);
  const before = snapshot(ctx);
  ctx.meter.down();
  say(`${label}: link down for ${offlineMs / 1000} s`);
  await sleep(offlineMs / 2);
  if (recreate) {
    const [tick] = await docker.listContainers({ filters: { label: [`flotilla.device=${deviceId}`, 'flotilla.app=tick-10s'] } });
    if (tick) {
      await docker.getContainer(tick.Id).remove({ force: true });
      say(`${label}: removed tick-10s's container; the agent recreates it offline`);
    }
  }
  await sleep(before.at + offlineMs - Date.now());
  const after = snapshot(ctx);
  const win = window(label, before, after, ctx.agentDir);
  say(`${label}: agent wrote ${win.io.writeBytes} B in ${win.seconds.toFixed(0)} s (${JSON.stringify(win.files)})`);

  const upAt = Date.now();
  const wireBefore = ctx.meter.stats();
  const ioBefore = readProcIo(ctx.agent.child.pid!);
  const writesBefore = ctx.writes.counts();
  ctx.meter.up();
  const connAt = await until('the agent to reconnect', () => ctx.meter.stats().connacks.find((t) => t >= upAt), drainTimeoutMs);
  say(`${label}: link up; agent reconnected after ${((connAt - upAt) / 1000).toFixed(1)} s`);

  // Drained: every telemetry seq after the last one seen before the cut, up to
  // one made after the link came back (2 s later, past any batch in the making).
  const drained = () => {
    const since = seen.filter((m) => m.at >= connAt && isTelemetry(m));
    const live = since.filter((m) => (m.madeAt ?? 0) >= upAt + 2_000).map((m) => m.seq!);
    if (live.length === 0) return false;
    const have = new Set(seen.filter(isTelemetry).map((m) => m.seq!));
    for (let s = lastSeqBefore + 1; s < Math.min(...live); s++) if (!have.has(s)) return false;
    return true;
  };
  let confirmed = true;
  try {
    await until('the backlog to arrive', drained, drainTimeoutMs);
  } catch {
    confirmed = false;
    say(`${label}: backlog not confirmed complete within ${drainTimeoutMs / 1000} s`);
  }
  // One more outbox tick (5 s): the acknowledged rows' deletions are written then.
  await sleep(6_000);
  const drainIo = diffIo(ioBefore, readProcIo(ctx.agent.child.pid!));
  const drainFiles = diffCounts(writesBefore, ctx.writes.counts());

  const afterUp = seen.filter((m) => m.at >= connAt);
  const backlogMsgs = afterUp.filter(
    (m) => OUTBOX_CHANNELS.has(m.channel) && m.madeAt !== undefined && m.madeAt < upAt && m.madeAt >= before.at - 1_000,
  );
  const backlog: Drain['backlog'] = {};
  const distinct = new Set<string>();
  for (const m of backlogMsgs) {
    const key = `${m.channel}:${m.seq ?? m.at}`;
    if (distinct.has(key)) continue;
    distinct.add(key);
    tally(backlog, m);
  }
  const copies = new Map<string, number>();
  for (const m of seen) if (m.seq !== undefined) copies.set(`${m.channel}:${m.seq}`, (copies.get(`${m.channel}:${m.seq}`) ?? 0) + 1);
  const resent = afterUp.filter((m) => m.seq !== undefined && (copies.get(`${m.channel}:${m.seq}`) ?? 0) > 1).length;
  const lastOffline = seen
    .filter((m) => m.channel === 'metrics' && m.madeAt !== undefined && m.madeAt < upAt)
    .sort((a, b) => a.madeAt! - b.madeAt!)
    .at(-1);
  const outboxAtEnd = (lastOffline?.body.agent as { outbox?: Drain['outboxAtEnd'] } | undefined)?.outbox;
  const drain: Drain = {
    reconnectS: (connAt - upAt) / 1000,
    drainS: backlogMsgs.length > 0 ? (Math.max(...backlogMsgs.map((m) => m.at)) - connAt) / 1000 : undefined,
    confirmed,
    backlog,
    resent,
    outboxAtEnd,
    wire: diffStats(wireBefore, ctx.meter.stats()),
    io: drainIo,
    files: drainFiles,
  };
  const check = await checkHub(ctx);
  say(
    `${label}: drained in ${drain.drainS?.toFixed(2)} s; hub has ${check.lines.unique} unique lines, ` +
      `${check.lines.duplicates} duplicates, ${check.lines.gaps} gaps; events ${check.events.distinctSeqs}/${check.events.maxSeq}`,
  );
  return { window: win, drain, check };
}

// ---------------------------------------------------------------------------

interface OnlineWindow {
  label: string;
  agentArgs: string[];
  seconds: number;
  wire: MeterStats;
  tcp: { segsOut: number; segsIn: number; bytesSent: number; bytesReceived: number } | undefined;
  onHub: Record<string, { messages: number; bytes: number }>;
  /** Docker's timestamp of each line → its batch at the hub's subscriber, in ms. */
  lineLatencyMs: { lines: number; median: number; p95: number; max: number };
  io: ProcIo;
  /** The agent reconnected during the window (its figures then include a CONNECT). */
  reconnected: boolean;
  /** The hub's own count of the device's MQTT bytes over the window (`/api/v1/top`), to set beside the proxy's. */
  hubCounted: { bytesIn: number; bytesOut: number } | undefined;
}

/** The device's link bytes as the hub counts them (broker/mqtt/link-bytes.ts), through `/api/v1/top`. */
async function hubLinkBytes(hub: HubProcess): Promise<{ bytesIn: number; bytesOut: number } | undefined> {
  const top = await getJson<{ devices: { id: string; linkBytesIn?: number; linkBytesOut?: number }[] }>(`${hub.url}/api/v1/top`);
  const row = top.devices.find((d) => d.id === deviceId);
  return row?.linkBytesIn === undefined || row.linkBytesOut === undefined
    ? undefined
    : { bytesIn: row.linkBytesIn, bytesOut: row.linkBytesOut };
}

/** One online window of `onlineMs`: what crossed the link, by packet kind, and how late lines arrived. */
async function onlineWindow(ctx: Context, label: string, agentArgs: string[]): Promise<OnlineWindow> {
  const hub0 = await hubLinkBytes(ctx.hub);
  const t0 = snapshot(ctx);
  say(`${label}: online window of ${onlineMs / 1000} s`);
  await sleep(onlineMs);
  const t1 = snapshot(ctx);
  const hub1 = await hubLinkBytes(ctx.hub);
  const wire = diffStats(t0.meter, t1.meter);
  const tcp = tcpBetween(t0, t1);
  const onHub: Record<string, { messages: number; bytes: number }> = {};
  const latencies: number[] = [];
  for (const m of seen.slice(t0.seen, t1.seen)) {
    tally(onHub, m);
    if (m.channel !== 'logs') continue;
    for (const line of (m.body.lines as { ts: string }[] | undefined) ?? []) latencies.push(m.at - Date.parse(line.ts));
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  const result: OnlineWindow = {
    label,
    agentArgs,
    seconds: (t1.at - t0.at) / 1000,
    wire,
    tcp,
    onHub,
    lineLatencyMs: { lines: latencies.length, median: at(0.5), p95: at(0.95), max: latencies.at(-1) ?? Number.NaN },
    io: diffIo(t0.io, t1.io),
    reconnected: t1.meter.accepted !== t0.meter.accepted,
    hubCounted: hub0 && hub1 ? { bytesIn: hub1.bytesIn - hub0.bytesIn, bytesOut: hub1.bytesOut - hub0.bytesOut } : undefined,
  };
  const mqttBytes = wire.up.bytes + wire.down.bytes;
  say(
    `${label}: ${mqttBytes} B of MQTT (${mb(perDay(mqttBytes, result.seconds))} MiB/day), ${tcp ? tcp.segsIn + tcp.segsOut : '?'} segments`,
  );
  return result;
}

/**
 * `--link-only`: the same agent in two online windows, first with the
 * baseline's flags, then at its defaults, and their link costs side by side.
 */
async function compareLink(ctx: Context, baselineArgs: string[]): Promise<void> {
  const windows: OnlineWindow[] = [];
  for (const [label, args] of [
    ['baseline', baselineArgs],
    ['defaults', []],
  ] as const) {
    if (windows.length > 0 || args.length > 0) {
      await ctx.agent.stop();
      const restartAt = Date.now();
      ctx.agent = startAgent(ctx.meter.url, ctx.agentDir, [...args]);
      await until('the restarted agent to report', async () => {
        const connected = ctx.meter.stats().connacks.some((t) => t > restartAt);
        return connected && (await allRunning(ctx.hub));
      });
      say(`${label}: agent restarted with [${args.join(' ')}]; settling ${settleMs / 1000} s`);
      await sleep(settleMs);
    }
    windows.push(await onlineWindow(ctx, label, [...args]));
  }
  const check = await checkHub(ctx);
  const report = { deviceId, loadAverage: loadavg(), settings: { onlineS: onlineMs / 1000, settleS: settleMs / 1000 }, windows, check };
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else printComparison(windows, check);
}

/** IPv4 (20) + TCP with timestamps (32): what each segment adds on the link. */
const SEGMENT_HEADER_BYTES = 52;

/** Bytes per day by component: each kind's MQTT bytes, and the TCP/IP headers of every segment both ways. */
function components(w: OnlineWindow): [string, number][] {
  const day = (bytes: number) => perDay(bytes, w.seconds);
  const kinds = { ...w.wire.up.kinds };
  for (const [kind, t] of Object.entries(w.wire.down.kinds)) kinds[`${kind} (down)`] = t;
  const take = (match: (kind: string) => boolean) => {
    let bytes = 0;
    for (const [kind, t] of Object.entries(kinds)) {
      if (!match(kind)) continue;
      bytes += t.bytes;
      delete kinds[kind];
    }
    return day(bytes);
  };
  const rows: [string, number][] = [
    ['logs (PUBLISH, QoS 1)', take((k) => k.startsWith('PUBLISH logs'))],
    ['metrics (PUBLISH, QoS 0)', take((k) => k.startsWith('PUBLISH metrics'))],
    ['state (PUBLISH, QoS 1)', take((k) => k.startsWith('PUBLISH state'))],
    ['PUBACK (down)', take((k) => k.startsWith('PUBACK'))],
    ["commands (down: the hub's telemetry.link)", take((k) => k.startsWith('PUBLISH commands'))],
  ];
  rows.push(['everything else (events, status, pings)', take(() => true)]);
  const mqttBytes = w.wire.up.bytes + w.wire.down.bytes;
  rows.push(['**MQTT total**', day(mqttBytes)]);
  if (w.tcp) {
    const segments = w.tcp.segsIn + w.tcp.segsOut;
    rows.push([`TCP/IP headers (${SEGMENT_HEADER_BYTES} B × segments, ACKs included)`, day(segments * SEGMENT_HEADER_BYTES)]);
    rows.push(['**with TCP/IP headers**', day(mqttBytes + segments * SEGMENT_HEADER_BYTES)]);
  }
  return rows;
}

function printComparison(windows: OnlineWindow[], check: HubCheck): void {
  const out = (text = '') => console.log(text);
  const [base, next] = windows as [OnlineWindow, OnlineWindow];
  out(
    `\nwindows: ${windows.map((w) => `${w.label} ${w.seconds.toFixed(0)} s [${w.agentArgs.join(' ')}]`).join(', ')}; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  out(`apps: ${APPS.map((a) => `${a.name} (1 line/${a.periodS} s)`).join(', ')}\n`);
  out(`| component | ${base.label} MiB/day | ${next.label} MiB/day | ${next.label} / ${base.label} |`);
  out('| --- | --- | --- | --- |');
  const a = components(base);
  const b = new Map(components(next));
  for (const [name, bytes] of a) {
    const other = b.get(name) ?? b.get([...b.keys()].find((k) => k.startsWith(name.split(' (')[0]!)) ?? '') ?? 0;
    out(`| ${name} | ${mb(bytes)} | ${mb(other)} | ${bytes > 0 ? `${(other / bytes).toFixed(2)}×` : '–'} |`);
  }
  out(
    '\n| window | packets up / down | segments out / in | logs: messages, lines | metrics samples | line → hub latency median / p95 / max | agent disk writes |',
  );
  out('| --- | --- | --- | --- | --- | --- | --- |');
  for (const w of windows) {
    const count = (d: DirectionStats) => Object.values(d.kinds).reduce((n, t) => n + t.packets, 0);
    const lines = w.lineLatencyMs.lines;
    out(
      `| ${w.label} | ${count(w.wire.up)} / ${count(w.wire.down)} | ${w.tcp ? `${w.tcp.segsOut} / ${w.tcp.segsIn}` : '?'} | ${w.onHub.logs?.messages ?? 0}, ${lines} | ${w.onHub.metrics?.messages ?? 0} | ` +
        `${(w.lineLatencyMs.median / 1000).toFixed(2)} / ${(w.lineLatencyMs.p95 / 1000).toFixed(2)} / ${(w.lineLatencyMs.max / 1000).toFixed(2)} s | ${kb(w.io.writeBytes)} KiB |${w.reconnected ? ' (reconnected!)' : ''}`,
    );
  }
  out('\nPackets by kind (whole MQTT packets; payload as it crossed the link):\n');
  out('| window | direction | packet | packets | MQTT bytes | payload bytes | bytes per packet |');
  out('| --- | --- | --- | --- | --- | --- | --- |');
  for (const w of windows) {
    for (const [dir, d] of [
      ['up', w.wire.up],
      ['down', w.wire.down],
    ] as const) {
      for (const [kind, t] of Object.entries(d.kinds).sort((x, y) => y[1].bytes - x[1].bytes)) {
        out(`| ${w.label} | ${dir} | ${kind} | ${t.packets} | ${t.bytes} | ${t.payload} | ${(t.bytes / t.packets).toFixed(0)} |`);
      }
    }
  }
  for (const w of windows) {
    const counted = w.hubCounted ? `in ${w.hubCounted.bytesIn} B, out ${w.hubCounted.bytesOut} B` : 'nothing';
    out(`${w.label}: the hub counted ${counted}; the proxy forwarded up ${w.wire.up.bytes} B, down ${w.wire.down.bytes} B`);
  }
  out(
    `\nhub: ${check.lines.stored} lines stored, ${check.lines.unique} unique, ${check.lines.duplicates} duplicates, ${check.lines.gaps} gaps; ` +
      `${check.missingVsDocker.length} lines in docker logs missing at the hub (${check.behindDocker} still on their way)`,
  );
}

// ---------------------------------------------------------------------------

/** What was measured so far: printed as JSON if a later step fails (the shared engine may go away mid-run). */
const partial: Record<string, unknown> = {};

async function main() {
  const started = new Date();
  const removed = await removeContainers(true);
  if (removed > 0) say(`removed ${removed} containers left by an earlier run`);
  const images = await ensureTestImages();
  const work = mkdtempSync(join(tmpdir(), 'flotilla-bench-link-'));
  releases.push({ what: 'temp dir', run: () => rmSync(work, { recursive: true, force: true }) });
  releases.push({ what: 'processes', run: () => stopAll() });
  const hub = await startHubProcess(join(work, 'hub'));
  const meter = await startMqttMeter({ targetPort: hub.mqttPort });
  releases.push({ what: 'proxy', run: () => meter.close() });

  const watcher: MqttClient = await mqtt.connectAsync(hub.mqttUrl, { protocolVersion: 4, clientId: `bench-link-watch-${run}` });
  releases.push({ what: 'subscriber', run: () => watcher.endAsync(true) });
  watcher.on('message', (topic, payload, packet) => record(topic, payload, packet.retain));
  await watcher.subscribeAsync(`${DEFAULT_TOPIC_ROOT}/devices/${deviceId}/#`, { qos: 1 });

  const agentDir = join(work, 'agent');
  const ctx: Context = {
    hub,
    meter,
    agentDir,
    since: started.toISOString(),
    writes: undefined as unknown as WriteWatcher,
    ledgerSaves: NO_WATCHER,
    agent: startAgent(meter.url, agentDir, []),
  };
  // Stop the agent before its containers go (it would recreate them).
  releases.push({ what: 'containers', run: () => removeContainers(false) });
  releases.push({ what: 'agent', run: () => ctx.agent.stop() });
  const spawnedAt = Date.now();
  const zero = readProcIo(ctx.agent.child.pid!);
  await until('the agent data dir', () => fileSizes(agentDir)['agent.db'] !== undefined, 60_000);
  ctx.writes = watchWrites(agentDir);
  releases.push({ what: 'inotify', run: () => ctx.writes.close() });

  // --- Phase 1: the default outbox file.
  const file = join(work, 'apps.yaml');
  writeFileSync(file, appsYaml(deviceId, images.v1));
  const applied = await runCli(['--hub', hub.url, 'apply', '-f', file]);
  if (applied.code !== 0) throw new Error(`flotilla apply failed: ${applied.stderr}`);
  say(`applied: ${applied.stdout.trim().replaceAll('\n', '; ')}`);
  await until('three apps running', () => allRunning(hub));
  say(`apps running after ${((Date.now() - spawnedAt) / 1000).toFixed(1)} s; settling ${settleMs / 1000} s`);
  await sleep(settleMs);

  if (values['link-only'])
    return compareLink(
      ctx,
      values['baseline-args'].split(/\s+/).filter((a) => a !== ''),
    );

  ctx.ledgerSaves = watchLedgerSaves(agentDir);
  releases.push({ what: 'inotify (ledger)', run: () => ctx.ledgerSaves.close() });
  const t0 = snapshot(ctx);
  const startup = { seconds: (t0.at - spawnedAt) / 1000, io: diffIo(zero, t0.io) };
  say(`online window: ${onlineMs / 1000} s`);
  await sleep(onlineMs);
  const t1 = snapshot(ctx);
  if (t1.meter.accepted !== t0.meter.accepted) say('warning: the agent reconnected during the online window');
  const online = window('online', t0, t1, agentDir);
  const wire = diffStats(t0.meter, t1.meter);
  const tcp = tcpBetween(t0, t1);
  const onHub: Record<string, { messages: number; bytes: number }> = {};
  for (const m of seen.slice(t0.seen, t1.seen)) tally(onHub, m);
  // Why state reports went out in a steady state: what changed from the one before (reportedAt aside).
  const states = seen.slice(0, t1.seen).filter((m) => m.channel === 'state');
  const stateChanges: Record<string, number> = {};
  let statusOnly = { messages: 0, bytes: 0 };
  for (let i = 1; i < states.length; i++) {
    if (states[i]!.at < t0.at) continue;
    const changed = changedPaths(states[i - 1]!.body, states[i]!.body).filter((p) => p !== '.reportedAt');
    for (const path of changed) stateChanges[path] = (stateChanges[path] ?? 0) + 1;
    // Docker's "Up 5 minutes": changes every minute in a container's first hour, every hour up to two days, then daily.
    if (changed.every((p) => p === STATUS_PATH)) {
      statusOnly = { messages: statusOnly.messages + 1, bytes: statusOnly.bytes + states[i]!.bytes };
    }
  }

  say(
    `online: agent wrote ${online.io.writeBytes} B in ${online.seconds.toFixed(0)} s; ` +
      `link ${wire.up.bytes} B up, ${wire.down.bytes} B down (${kb(perDay(wire.up.bytes + wire.down.bytes, online.seconds))} KiB/day)`,
  );
  Object.assign(partial, { startup, online, wire, tcp, onHub });
  const fileOffline = await offlineWindow(ctx, 'offline, file outbox');
  partial.fileOffline = fileOffline;

  // --- Phase 2: the same agent restarted with the RAM outbox.
  const stoppedAt = Date.now();
  await ctx.agent.stop();
  const eventSeqAfterPhase1 = readEventSeq(agentDir);
  const restartAt = Date.now();
  ctx.agent = startAgent(meter.url, agentDir, ['--outbox', 'memory']);
  const zero2 = readProcIo(ctx.agent.child.pid!);
  await until('the restarted agent to report', async () => {
    const connected = meter.stats().connacks.some((t) => t > restartAt);
    return connected && (await allRunning(hub));
  });
  await sleep(settleMs);
  ctx.ledgerSaves.close();
  ctx.ledgerSaves = watchLedgerSaves(agentDir);
  const restart = { seconds: (Date.now() - restartAt) / 1000, io: diffIo(zero2, readProcIo(ctx.agent.child.pid!)) };
  partial.restart = restart;
  const memoryOffline = await offlineWindow(ctx, 'offline, memory outbox');
  await ctx.agent.stop();
  const eventSeqAtEnd = readEventSeq(agentDir);
  const final = await checkHub(ctx);
  // The new agent follows its containers' logs from its own start: lines printed while no agent ran are not sent.
  const newAgentFirstLine = Math.min(
    ...seen
      .filter((m) => m.channel === 'logs' && m.at > restartAt)
      .flatMap((m) => (m.body.lines as { ts: string }[]).map((l) => Date.parse(l.ts))),
  );
  const noAgent = { from: stoppedAt, to: newAgentFirstLine };
  const lostInRestart = final.missingVsDocker.filter((m) => m.ts >= noAgent.from && m.ts <= noAgent.to).length;

  const report = {
    deviceId,
    startedAt: started.toISOString(),
    loadAverage: loadavg(),
    settings: { onlineS: onlineMs / 1000, offlineS: offlineMs / 1000, settleS: settleMs / 1000, recreate, apps: APPS },
    startup,
    restart,
    online,
    wire,
    tcp,
    onHub,
    fileOffline,
    memoryOffline,
    eventSeq: { afterPhase1: eventSeqAfterPhase1, atEnd: eventSeqAtEnd },
    stateChanges,
    statusOnly,
    final,
    restartGap: { seconds: (noAgent.to - noAgent.from) / 1000, lostLines: lostInRestart },
  };
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else printReport(report);
}

/** The agent's persisted event seq (its last event's), read once the agent has stopped. */
function readEventSeq(agentDir: string): number {
  const db = new Database(join(agentDir, 'agent.db'), { readonly: true, fileMustExist: true });
  try {
    return Number((db.prepare("SELECT value FROM kv WHERE key = 'event-seq'").get() as { value: string } | undefined)?.value ?? 0);
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------

const kb = (n: number) => (n / 1024).toFixed(1);
const mb = (n: number) => (n / 2 ** 20).toFixed(2);
const perHour = (bytes: number, seconds: number) => (bytes * 3600) / seconds;
const perDay = (bytes: number, seconds: number) => (bytes * 86400) / seconds;

function printReport(r: {
  settings: { onlineS: number; offlineS: number; settleS: number; recreate: boolean };
  loadAverage: number[];
  startup: { seconds: number; io: ProcIo };
  restart: { seconds: number; io: ProcIo };
  online: Window;
  wire: MeterStats;
  tcp?: { segsOut: number; segsIn: number; bytesSent: number; bytesReceived: number };
  onHub: Record<string, { messages: number; bytes: number }>;
  fileOffline: { window: Window; drain: Drain; check: HubCheck };
  memoryOffline: { window: Window; drain: Drain; check: HubCheck };
  eventSeq: { afterPhase1: number; atEnd: number };
  stateChanges: Record<string, number>;
  statusOnly: { messages: number; bytes: number };
  final: HubCheck;
  restartGap: { seconds: number; lostLines: number };
}) {
  const out = (s = '') => console.log(s);
  out(
    `\nwindows: online ${r.online.seconds.toFixed(0)} s, offline ${r.fileOffline.window.seconds.toFixed(0)} s (file) / ${r.memoryOffline.window.seconds.toFixed(0)} s (memory); `,
  );
  out(
    `apps: ${APPS.map((a) => `${a.name} (1 line/${a.periodS} s)`).join(', ')}; recreate offline: ${r.settings.recreate}; load ${r.loadAverage.map((l) => l.toFixed(1)).join(' ')}\n`,
  );

  out("Disk: the agent process's /proc/<pid>/io write_bytes\n");
  out('| window | seconds | write_bytes | per hour | cancelled | files modified (inotify events) | agent stdout |');
  out('| --- | --- | --- | --- | --- | --- | --- |');
  const files = (f: Record<string, number>) =>
    Object.entries(f)
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ') || '–';
  out(
    `| start: spawn → apps running + ${r.settings.settleS} s | ${r.startup.seconds.toFixed(0)} | ${kb(r.startup.io.writeBytes)} KiB | – | ${kb(r.startup.io.cancelledWriteBytes)} KiB | – | – |`,
  );
  for (const w of [r.online, r.fileOffline.window, r.memoryOffline.window]) {
    out(
      `| ${w.label} | ${w.seconds.toFixed(0)} | ${kb(w.io.writeBytes)} KiB | **${mb(perHour(w.io.writeBytes, w.seconds))} MiB** | ${kb(w.io.cancelledWriteBytes)} KiB | ${files(w.files)} | ${kb(perHour(w.stdoutBytes, w.seconds))} KiB/h |`,
    );
  }
  out(
    `| restart with --outbox memory + ${r.settings.settleS} s | ${r.restart.seconds.toFixed(0)} | ${kb(r.restart.io.writeBytes)} KiB | – | ${kb(r.restart.io.cancelledWriteBytes)} KiB | – | – |`,
  );
  const ratio = r.fileOffline.window.io.writeBytes / Math.max(1, r.memoryOffline.window.io.writeBytes);
  out(
    `\noffline file / memory: ${ratio.toFixed(1)}×; files after the file-outbox offline window: ${JSON.stringify(r.fileOffline.window.sizesAfter)}\n`,
  );

  const s = r.online.seconds;
  out(`Link, online (${s.toFixed(0)} s through the proxy; per day = × ${(86400 / s).toFixed(0)})\n`);
  out('| direction | packet | packets | MQTT bytes | payload bytes | per day |');
  out('| --- | --- | --- | --- | --- | --- |');
  for (const [dir, d] of [
    ['up', r.wire.up],
    ['down', r.wire.down],
  ] as const) {
    for (const [kind, t] of Object.entries(d.kinds).sort((a, b) => b[1].bytes - a[1].bytes)) {
      out(`| ${dir} | ${kind} | ${t.packets} | ${t.bytes} | ${t.payload} | ${kb(perDay(t.bytes, s))} KiB |`);
    }
    out(`| ${dir} | **total** | | ${d.bytes} | | **${kb(perDay(d.bytes, s))} KiB** |`);
  }
  const state = r.wire.up.kinds['PUBLISH state q1'];
  if (state && r.statusOnly.messages > 0) {
    // Average whole-packet size of a state report, and its PUBACK.
    const statusBytes = r.statusOnly.messages * (state.bytes / state.packets + 4);
    out(
      `\n${r.statusOnly.messages} of the ${state.packets} state reports changed only a container's Docker status text; ` +
        `without them (a device whose containers run for days): ${kb(perDay(r.wire.up.bytes + r.wire.down.bytes - statusBytes, s))} KiB/day up and down`,
    );
  }
  const payload = [...Object.values(r.wire.up.kinds), ...Object.values(r.wire.down.kinds)].reduce((a, t) => a + t.payload, 0);
  const mqttBytes = r.wire.up.bytes + r.wire.down.bytes;
  out(`\npayload ${payload} B, MQTT ${mqttBytes} B: ×${(mqttBytes / payload).toFixed(2)} over the payload`);
  if (r.tcp) {
    const segs = r.tcp.segsOut + r.tcp.segsIn;
    const ip = mqttBytes + segs * 52;
    out(
      `TCP: ${r.tcp.segsOut} segments out, ${r.tcp.segsIn} in (ACKs included); at 52 B of IPv4+TCP(timestamps) headers each: ${ip} B, ` +
        `×${(ip / payload).toFixed(2)} over the payload, ${mb(perDay(ip, s))} MiB/day`,
    );
  }
  out(
    `on the hub (subscriber, payload bytes): ${Object.entries(r.onHub)
      .map(([c, v]) => `${c} ${v.messages}×, ${v.bytes} B`)
      .join('; ')}\n`,
  );

  out('Offline → back online\n');
  out(
    '| outbox | outbox at the end (messages, bytes) | reconnect after up (s) | drain after CONNACK (s) | backlog delivered | resent copies | agent writes during the drain | hub lines: unique / duplicates / gaps / behind docker | events on the hub (seqs / max) |',
  );
  out('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [name, o] of [
    ['file', r.fileOffline],
    ['memory', r.memoryOffline],
  ] as const) {
    const b = Object.entries(o.drain.backlog)
      .map(([c, v]) => `${c} ${v.messages} (${kb(v.bytes)} KiB)`)
      .join(', ');
    const box = o.drain.outboxAtEnd ? `${o.drain.outboxAtEnd.messages}, ${kb(o.drain.outboxAtEnd.bytes)} KiB` : '?';
    const l = o.check.lines;
    out(
      `| ${name} | ${box} | ${o.drain.reconnectS.toFixed(1)} | ${o.drain.drainS?.toFixed(2) ?? '–'}${o.drain.confirmed ? '' : ' (unconfirmed)'} | ${b} | ${o.drain.resent} | ${kb(o.drain.io.writeBytes)} KiB (${files(o.drain.files)}) | ${l.unique} / ${l.duplicates} / ${l.gaps} / ${o.check.missingVsDocker.length} missing, ${o.check.behindDocker} in flight | ${o.check.events.distinctSeqs} / ${o.check.events.maxSeq} |`,
    );
  }
  const f = r.final;
  out(
    `\nat the end: ${f.lines.stored} lines stored, ${f.lines.unique} unique, ${f.lines.duplicates} duplicates, ${f.lines.gaps} gaps, ${f.lines.other} other; ` +
      `runs ${JSON.stringify(f.lines.runs)}; events ${f.events.stored} stored, seqs 1…${f.events.maxSeq} with ${f.events.gaps} gaps; ` +
      `the agent's event-seq: ${r.eventSeq.afterPhase1} after phase 1, ${r.eventSeq.atEnd} at the end`,
  );
  out(
    `missing lines (vs docker logs): ${f.missingVsDocker.length}, of which ${r.restartGap.lostLines} printed while no agent ran ` +
      `(${r.restartGap.seconds.toFixed(1)} s from stopping the file-outbox agent to the new agent's first line); missing: ${f.lines.missing.join(', ') || 'none'}`,
  );
  out(
    `state reports in the online window changed: ${JSON.stringify(r.stateChanges)}; ${r.statusOnly.messages} of them ` +
      `(${r.statusOnly.bytes} B payload) only in ${STATUS_PATH}`,
  );
}

try {
  await main();
} catch (err) {
  if (Object.keys(partial).length > 0) console.log(JSON.stringify({ failed: (err as Error).message, ...partial }, null, 2));
  throw err;
} finally {
  await releases.releaseAll();
}
