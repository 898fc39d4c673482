/**
 * The log follower manager over the in-memory runtime, on fake timers: what
 * reaches the link, in which batches, and what is dropped when.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CursorFile, type LedgerStore } from '../../agent/telemetry/logs/cursor-file.js';
import { LEDGER_FILE_NAME, LedgerFiles } from '../../agent/telemetry/logs/ledger-files.js';
import { LogCollector, type LogSink } from '../../agent/telemetry/logs/log-collector.js';
import type { LedgerJson } from '../../agent/telemetry/logs/log-cursor.js';
import { LogPipeline } from '../../agent/telemetry/logs/log-pipeline.js';
import { type LogBatch, LogBatch as LogBatchSchema, type LogLine, validate } from '../../shared/index.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';

class FakeLink implements LogSink {
  up = true;
  readonly batches: LogBatch[] = [];
  get canSendLogs(): boolean {
    return this.up;
  }
  publishLogs(batch: LogBatch): boolean {
    if (!this.up) return false;
    const checked = validate(LogBatchSchema, batch);
    if (!checked.ok) throw new Error('invalid batch');
    this.batches.push(batch);
    return true;
  }
  lines(app?: string): LogLine[] {
    return this.batches.flatMap((b) => b.lines).filter((l) => app === undefined || l.app === app);
  }
}

const BATCH_MS = 250;

describe('log collector', () => {
  let runtime: MemoryRuntime;
  let link: FakeLink;
  let collector: LogCollector;
  let seq = 0;

  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2024-05-01T12:00:00Z') });
    runtime = new MemoryRuntime({ images: ['web:v1'] });
    link = new FakeLink();
  });

  afterEach(() => {
    collector?.close();
    runtime.close();
    vi.useRealTimers();
  });

  function start(options: { rate?: number; bufferBytes?: number } = {}): LogCollector {
    collector = new LogCollector({
      runtime,
      sink: link,
      nextSeq: () => ++seq,
      logger: pino({ level: 'silent' }),
      rateLinesPerSecond: options.rate ?? 200,
      bufferBytes: options.bufferBytes ?? 1024 * 1024,
      lineMaxBytes: 1024,
      batchBytes: 64 * 1024,
      batchMs: BATCH_MS,
    });
    collector.start();
    return collector;
  }

  async function run(app: string, container = 'main'): Promise<string> {
    const id = await runtime.create({ deviceId: 'dev-1', app, appRevision: 1, specHash: 'h', spec: { name: container, image: 'web:v1' } });
    await runtime.start(id);
    return id;
  }

  /** What an engine event does in the agent. */
  async function refresh(): Promise<void> {
    collector.refresh();
    await vi.advanceTimersByTimeAsync(1);
  }

  it('publishes the lines of a new container in order, with their streams, once per batch interval', async () => {
    start();
    const id = await run('shop');
    await refresh();
    runtime.writeLog(id, 'stdout', 'one');
    runtime.writeLog(id, 'stderr', 'two');
    await vi.advanceTimersByTimeAsync(BATCH_MS - 10);
    expect(link.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(20);
    expect(link.batches).toHaveLength(1);
    expect(link.lines()).toEqual([
      { app: 'shop', container: 'main', stream: 'stdout', ts: expect.any(String), line: 'one' },
      { app: 'shop', container: 'main', stream: 'stderr', ts: expect.any(String), line: 'two' },
    ]);
    runtime.writeLog(id, 'stdout', 'three');
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    expect(link.batches.map((b) => b.seq)).toEqual([1, 2]);
  });

  it('sends sooner once the window is shortened (lines already waiting included), and waits the long window again after', async () => {
    start();
    collector.setBatchWindow(10_000);
    const id = await run('shop');
    await refresh();
    runtime.writeLog(id, 'stdout', 'waiting');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(link.batches).toEqual([]);
    // Someone follows: the line that waited a second is already past a 250 ms window.
    collector.setBatchWindow(BATCH_MS);
    await vi.advanceTimersByTimeAsync(1);
    expect(link.lines().map((l) => l.line)).toEqual(['waiting']);
    runtime.writeLog(id, 'stdout', 'live');
    await vi.advanceTimersByTimeAsync(BATCH_MS + 1);
    expect(link.lines().map((l) => l.line)).toEqual(['waiting', 'live']);
    // The follower left: back to the long window.
    collector.setBatchWindow(10_000);
    runtime.writeLog(id, 'stdout', 'quiet again');
    await vi.advanceTimersByTimeAsync(9_000);
    expect(link.batches).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1_100);
    expect(link.lines().map((l) => l.line)).toEqual(['waiting', 'live', 'quiet again']);
  });

  it('sends every waiting line at once when asked (a metrics sample is going out), in one batch, and nothing when none waits', async () => {
    start();
    collector.setBatchWindow(10_000);
    const id = await run('shop');
    await refresh();
    collector.sendWaiting();
    expect(link.batches).toEqual([]);
    runtime.writeLog(id, 'stdout', 'a');
    await vi.advanceTimersByTimeAsync(2_000);
    runtime.writeLog(id, 'stdout', 'b');
    await vi.advanceTimersByTimeAsync(1);
    collector.sendWaiting();
    expect(link.batches).toHaveLength(1);
    expect(link.lines().map((l) => l.line)).toEqual(['a', 'b']);
    // The window's timer went with them: no empty or late batch follows.
    await vi.advanceTimersByTimeAsync(20_000);
    expect(link.batches).toHaveLength(1);
  });

  it('follows a container already running at start from the start, not from its beginning', async () => {
    const id = await run('shop');
    runtime.writeLog(id, 'stdout', 'before the agent');
    await vi.advanceTimersByTimeAsync(5_000);
    start();
    await refresh();
    runtime.writeLog(id, 'stdout', 'after');
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    expect(link.lines().map((l) => l.line)).toEqual(['after']);
  });

  it('after a restart resumes from the last line seen: nothing twice, nothing lost; stops for a removed container', async () => {
    start();
    const id = await run('shop');
    await refresh();
    runtime.writeLog(id, 'stdout', 'run 1');
    await vi.advanceTimersByTimeAsync(1);
    const calls = runtime.calls.followLogs ?? 0;
    await runtime.stop(id, 0);
    await refresh();
    await refresh();
    // A stopped run is read once more (for a last line the engine wrote late), and then left alone.
    expect(runtime.calls.followLogs).toBe(calls + 1);
    expect(collector.following).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    await runtime.start(id);
    runtime.writeLog(id, 'stdout', 'run 2 before the follow');
    await refresh();
    runtime.writeLog(id, 'stdout', 'run 2');
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    expect(link.lines().map((l) => l.line)).toEqual(['run 1', 'run 2 before the follow', 'run 2']);
    expect(collector.following).toBe(1);

    await runtime.stop(id, 0);
    await runtime.remove(id);
    await refresh();
    expect(collector.following).toBe(0);
  });

  it('keeps a flooding app from starving a quiet one, and says what it dropped', async () => {
    start({ rate: 50 });
    const flood = await run('flood');
    const quiet = await run('quiet');
    await refresh();
    for (let ms = 0; ms < 2_000; ms += 10) {
      for (let i = 0; i < 100; i++) runtime.writeLog(flood, 'stdout', `flood ${ms}/${i}`);
      if (ms % 500 === 0) runtime.writeLog(quiet, 'stderr', `quiet ${ms}`);
      await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    expect(link.lines('quiet').map((l) => l.line)).toEqual(['quiet 0', 'quiet 500', 'quiet 1000', 'quiet 1500']);
    const floodLines = link.lines('flood');
    const markers = floodLines.filter((l) => l.stream === 'system');
    const passed = floodLines.length - markers.length;
    // Burst (100) plus about 50 a second for 2 s, in runs of a second's worth.
    expect(passed).toBeGreaterThanOrEqual(150);
    expect(passed).toBeLessThanOrEqual(210);
    const suppressed = markers.reduce((sum, m) => sum + (m.suppressed ?? 0), 0);
    expect(passed + suppressed).toBe(20_000);
    // At most one marker per batch interval while the flood lasts, not one per accepted line.
    expect(markers.length).toBeLessThanOrEqual(2_000 / BATCH_MS + 1);
    expect(markers[0]?.line).toMatch(/^suppressed \d+ lines \(rate limit\)$/);
    expect(collector.droppedLines).toBe(suppressed);
  });

  it('keeps lines while the link is down, within the buffer, and drops and counts beyond it', async () => {
    start({ rate: 10_000, bufferBytes: 16 * 1024 });
    const id = await run('shop');
    await refresh();
    link.up = false;
    for (let i = 0; i < 1_000; i++) runtime.writeLog(id, 'stdout', `line ${i}`);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(link.batches).toEqual([]);
    const dropped = collector.droppedLines;
    expect(dropped).toBeGreaterThan(800);
    link.up = true;
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    const lines = link.lines();
    // The oldest lines that fitted, then what was lost.
    expect(lines[0]?.line).toBe('line 0');
    expect(lines.at(-1)).toMatchObject({ stream: 'system', suppressed: dropped, line: `suppressed ${dropped} lines (buffer full)` });
    expect(lines.length - 1 + dropped).toBe(1_000);
  });

  it('cuts batches at the byte limit', () => {
    const pipeline = new LogPipeline({
      rateLinesPerSecond: 10_000,
      bufferBytes: 1024 * 1024,
      lineMaxBytes: 100,
      batchBytes: 4096,
      batchMs: BATCH_MS,
      now: Date.now,
    });
    for (let i = 0; i < 100; i++) pipeline.push('a', 'main', { stream: 'stdout', ts: '2024-05-01T12:00:00Z', line: 'x'.repeat(200) });
    expect(pipeline.dueIn()).toBe(0);
    const batch = pipeline.takeBatch();
    expect(batch[0]).toMatchObject({ line: 'x'.repeat(100), truncated: true });
    expect(batch.length).toBeGreaterThan(10);
    expect(JSON.stringify(batch).length).toBeLessThanOrEqual(4096);
  });
});

/** The ledger file of an agent that can be killed: after `dead`, nothing it saves reaches the disk. */
class KillableFile extends CursorFile {
  dead = false;
  override save(json: LedgerJson): void {
    if (!this.dead) super.save(json);
  }
}

/** What the hub keeps: the first batch of each seq, as `(device, seq)` is stored once. */
class HubModel {
  readonly batches = new Map<number, LogLine[]>();
  ingest(batch: LogBatch): void {
    if (!this.batches.has(batch.seq)) this.batches.set(batch.seq, batch.lines);
  }
  lines(): string[] {
    return [...this.batches.entries()].sort(([a], [b]) => a - b).flatMap(([, lines]) => lines.map((l) => l.line));
  }
}

/**
 * One agent life's link and outbox: a published batch reaches the hub
 * (`deliver`) and its acknowledgement settles it in the collector (`ack`),
 * as the outbox reports an acknowledged batch.
 */
class OutboxModel implements LogSink {
  up = true;
  deliver = true;
  ack = true;
  collector: LogCollector | undefined;
  constructor(private readonly hub: HubModel) {}
  get canSendLogs(): boolean {
    return this.up;
  }
  publishLogs(batch: LogBatch): boolean {
    if (!this.up) return false;
    if (this.deliver) this.hub.ingest(batch);
    if (this.deliver && this.ack) this.collector?.settled([Buffer.from(JSON.stringify(batch))]);
    return true;
  }
}

/**
 * Agent lives one after another on one engine, as across restarts: each
 * collector numbers its batches on from the last life's seq (each life a new
 * boot, as TelemetrySeq does), and `close` ends the ones still running.
 */
class AgentLives {
  private readonly collectors: LogCollector[] = [];
  private seq = 0;

  constructor(private readonly runtime: MemoryRuntime) {}

  agent(sink: OutboxModel, file: LedgerStore): LogCollector {
    const collector = new LogCollector({
      runtime: this.runtime,
      sink,
      nextSeq: () => ++this.seq,
      logger: pino({ level: 'silent' }),
      rateLinesPerSecond: 1000,
      bufferBytes: 1024 * 1024,
      lineMaxBytes: 1024,
      batchBytes: 64 * 1024,
      batchMs: BATCH_MS,
      ledgerFile: file,
    });
    sink.collector = collector;
    this.collectors.push(collector);
    collector.start();
    return collector;
  }

  /** Prints `line from` … `line to`, 100 ms apart unless `sameInstant`, then lets a batch window pass. */
  async print(id: string, from: number, to: number, sameInstant = false): Promise<void> {
    for (let n = from; n <= to; n++) {
      this.runtime.writeLog(id, 'stdout', `line ${n}`);
      if (!sameInstant) await vi.advanceTimersByTimeAsync(100);
    }
    await vi.advanceTimersByTimeAsync(BATCH_MS);
  }

  close(): void {
    for (const c of this.collectors.splice(0)) c.close();
  }
}

const numbers = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

describe('log collector across agent lives', () => {
  let runtime: MemoryRuntime;
  let dir: string;
  let lives: AgentLives;

  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2024-05-01T12:00:00Z') });
    runtime = new MemoryRuntime({ images: ['web:v1'] });
    lives = new AgentLives(runtime);
    dir = mkdtempSync(join(tmpdir(), 'flotilla-log-ledger-'));
  });

  afterEach(() => {
    lives.close();
    runtime.close();
    vi.useRealTimers();
    rmSync(dir, { recursive: true, force: true });
  });

  const agent = (sink: OutboxModel, file: LedgerStore) => lives.agent(sink, file);
  const print = (id: string, from: number, to: number, sameInstant = false) => lives.print(id, from, to, sameInstant);

  it('after a kill -9 the hub has every line once: acknowledged, unacknowledged, lost in flight and printed while no agent ran', async () => {
    const hub = new HubModel();
    const path = join(dir, 'log-ledger.json');
    const fileA = new KillableFile(path);
    const sinkA = new OutboxModel(hub);
    const a = agent(sinkA, fileA);
    const id = await startContainer(runtime, 'shop');
    a.refresh();
    await vi.advanceTimersByTimeAsync(1);
    await print(id, 1, 5);
    // The hub stores these, but the agent dies before their acknowledgements…
    sinkA.ack = false;
    await print(id, 6, 9, true);
    // …and these never reach the hub.
    sinkA.deliver = false;
    await print(id, 10, 12);
    expect(hub.lines()).toEqual(numbers(1, 9));
    fileA.dead = true;
    sinkA.up = false;
    // No agent runs: the container goes on printing, several lines in one instant.
    await print(id, 13, 16, true);
    await print(id, 17, 20);

    const sinkB = new OutboxModel(hub);
    const b = agent(sinkB, new CursorFile(path));
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    b.refresh();
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    await print(id, 21, 25);
    expect(hub.lines()).toEqual(numbers(1, 25));
  });

  it('after a clean stop, with a container restarted and another created meanwhile, the hub has every line once', async () => {
    const hub = new HubModel();
    const path = join(dir, 'log-ledger.json');
    const sinkA = new OutboxModel(hub);
    const a = agent(sinkA, new CursorFile(path));
    const id = await startContainer(runtime, 'shop');
    a.refresh();
    await vi.advanceTimersByTimeAsync(1);
    await print(id, 1, 5);
    a.close();
    await print(id, 6, 8);
    // The container dies and its restart policy starts it again, all while no agent runs.
    runtime.kill(id);
    await runtime.start(id);
    await print(id, 9, 12);
    // A container created while no agent ran is read from its first line.
    const late = await startContainer(runtime, 'late');
    runtime.writeLog(late, 'stdout', 'late 1');
    await vi.advanceTimersByTimeAsync(5_000);

    const b = agent(new OutboxModel(hub), new CursorFile(path));
    b.refresh();
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    await print(id, 13, 15);
    expect(hub.lines().filter((l) => l.startsWith('line'))).toEqual(numbers(1, 15));
    expect(hub.lines().filter((l) => l.startsWith('late'))).toEqual(['late 1']);
  });

  it('says how many lines the engine rotated away while no agent ran, then sends what it still holds', async () => {
    const hub = new HubModel();
    const path = join(dir, 'log-ledger.json');
    const id = await startContainer(runtime, 'shop');
    const a = agent(new OutboxModel(hub), new CursorFile(path));
    await vi.advanceTimersByTimeAsync(1);
    await print(id, 1, 5);
    a.close();
    // The memory engine keeps a container's last 1000 lines: 1500 more push lines 6..505 out.
    for (let n = 6; n <= 1505; n++) {
      runtime.writeLog(id, 'stdout', `line ${n}`);
      await vi.advanceTimersByTimeAsync(10);
    }
    agent(new OutboxModel(hub), new CursorFile(path));
    await vi.advanceTimersByTimeAsync(2_000);
    const lines = hub.lines();
    expect(lines.slice(0, 5)).toEqual(numbers(1, 5));
    // 500 were lost; the estimate (the held lines' rate over the gap) also counts the 350 ms pause before line 6.
    const lost = Number(/^(\d+) lines lost to log rotation$/.exec(lines[5] ?? '')?.[1]);
    expect(lost).toBeGreaterThanOrEqual(500);
    expect(lost).toBeLessThanOrEqual(550);
    expect(lines.slice(6)).toEqual(numbers(506, 1505));
    const marker = [...hub.batches.values()].flat().find((l) => l.stream === 'system');
    expect(marker).toMatchObject({ app: 'shop', container: 'main', stream: 'system' });
  });

  it('without a ledger yet (the first start), follows a running container from the agent start, and records that for the next', async () => {
    const hub = new HubModel();
    const path = join(dir, 'log-ledger.json');
    const id = await startContainer(runtime, 'shop');
    await print(id, 1, 3);
    await vi.advanceTimersByTimeAsync(5_000);
    const a = agent(new OutboxModel(hub), new CursorFile(path));
    await vi.advanceTimersByTimeAsync(1);
    a.close();
    await print(id, 4, 6);
    agent(new OutboxModel(hub), new CursorFile(path));
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    expect(hub.lines()).toEqual(numbers(4, 6));
  });
});

/** The ledger files of an agent that can be killed: after `dead`, nothing it saves reaches RAM or the disk. */
class KillableLedgerFiles extends LedgerFiles {
  dead = false;
  override save(json: LedgerJson): void {
    if (!this.dead) super.save(json);
  }
  override persist(json: LedgerJson): void {
    if (!this.dead) super.persist(json);
  }
}

describe('log collector across agent lives, the ledger in RAM', () => {
  let runtime: MemoryRuntime;
  let dataDir: string;
  let ramParent: string;
  let lives: AgentLives;

  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2024-05-01T12:00:00Z') });
    runtime = new MemoryRuntime({ images: ['web:v1'] });
    lives = new AgentLives(runtime);
    dataDir = mkdtempSync(join(tmpdir(), 'flotilla-log-ledger-data-'));
    ramParent = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'flotilla-log-ledger-ram-'));
  });

  afterEach(() => {
    lives.close();
    runtime.close();
    vi.useRealTimers();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(ramParent, { recursive: true, force: true });
  });

  const ramDir = () => join(ramParent, 'ledger');
  const files = () =>
    new KillableLedgerFiles({ diskPath: join(dataDir, LEDGER_FILE_NAME), ramDir: ramDir(), logger: pino({ level: 'silent' }) });
  /** RAM is wiped: a reboot after a clean stop, or a power cut. */
  const reboot = () => rmSync(ramDir(), { recursive: true, force: true });

  const agent = (sink: OutboxModel, file: LedgerStore) => lives.agent(sink, file);
  const print = (id: string, from: number, to: number, sameInstant = false) => lives.print(id, from, to, sameInstant);

  it('after a kill -9 the hub has every line once, and the data dir was not written while the agent ran', async () => {
    const hub = new HubModel();
    const fileA = files();
    const sinkA = new OutboxModel(hub);
    const a = agent(sinkA, fileA);
    const id = await startContainer(runtime, 'shop');
    a.refresh();
    await vi.advanceTimersByTimeAsync(1);
    await print(id, 1, 5);
    sinkA.ack = false;
    await print(id, 6, 9, true);
    sinkA.deliver = false;
    await print(id, 10, 12);
    expect(hub.batches.size).toBeGreaterThanOrEqual(3);
    // Every batch was recorded before it went out, and none of it on the SD card.
    expect(readdirSync(dataDir)).toEqual([]);
    fileA.dead = true;
    sinkA.up = false;
    await print(id, 13, 16, true);
    await print(id, 17, 20);

    const b = agent(new OutboxModel(hub), files());
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    b.refresh();
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    await print(id, 21, 25);
    expect(hub.lines()).toEqual(numbers(1, 25));
  });

  it('across a clean stop and a reboot the hub has every line once; after a power cut later, a gap but never a line twice', async () => {
    const hub = new HubModel();
    const a = agent(new OutboxModel(hub), files());
    const id = await startContainer(runtime, 'shop');
    a.refresh();
    await vi.advanceTimersByTimeAsync(1);
    await print(id, 1, 5);
    a.close();
    expect(readdirSync(dataDir)).toEqual([LEDGER_FILE_NAME]);
    reboot();
    await print(id, 6, 8);

    const fileB = files();
    const sinkB = new OutboxModel(hub);
    const b = agent(sinkB, fileB);
    b.refresh();
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    await print(id, 9, 12);
    expect(hub.lines()).toEqual(numbers(1, 12));
    // The clean stop's copy is gone before this agent's first batch: it no longer says what the hub has.
    expect(readdirSync(dataDir)).toEqual([]);
    sinkB.deliver = false;
    await print(id, 13, 14);
    // A power cut: the agent dies without a word and RAM is wiped.
    fileB.dead = true;
    sinkB.up = false;
    reboot();
    await print(id, 15, 16);
    await vi.advanceTimersByTimeAsync(5_000);

    const c = agent(new OutboxModel(hub), files());
    c.refresh();
    await vi.advanceTimersByTimeAsync(BATCH_MS);
    await print(id, 17, 20);
    // What was undelivered at the cut, and printed before this agent's start, is the gap; nothing came twice.
    expect(hub.lines()).toEqual([...numbers(1, 12), ...numbers(17, 20)]);
  });
});

/** A running container `main` of `app` on the memory engine. */
async function startContainer(runtime: MemoryRuntime, app: string): Promise<string> {
  const id = await runtime.create({ deviceId: 'dev-1', app, appRevision: 1, specHash: 'h', spec: { name: 'main', image: 'web:v1' } });
  await runtime.start(id);
  return id;
}
