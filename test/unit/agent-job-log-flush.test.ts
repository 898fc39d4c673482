/**
 * The log collector's flush, which the job runner awaits before it reports an
 * attempt's end: over the in-memory runtime, on fake timers, with a batch
 * window far longer than the test. What reaches the link, and when the flush
 * says it is done.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LogCollector, type LogSink } from '../../agent/telemetry/logs/log-collector.js';
import type { LogBatch } from '../../shared/index.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';

class FakeLink implements LogSink {
  connected = true;
  readonly batches: LogBatch[] = [];
  readonly canSendLogs = true;
  publishLogs(batch: LogBatch): boolean {
    this.batches.push(batch);
    return true;
  }
  lines(): string[] {
    return this.batches.flatMap((b) => b.lines.map((l) => l.line));
  }
}

const LONG_WINDOW_MS = 30_000;

describe('log collector flush', () => {
  let runtime: MemoryRuntime;
  let link: FakeLink;
  let collector: LogCollector;
  let seq = 0;

  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2024-05-01T12:00:00Z') });
    runtime = new MemoryRuntime({ images: ['task:v1'] });
    link = new FakeLink();
    collector = new LogCollector({
      runtime,
      sink: link,
      nextSeq: () => ++seq,
      logger: pino({ level: 'silent' }),
      rateLinesPerSecond: 200,
      bufferBytes: 1024 * 1024,
      lineMaxBytes: 1024,
      batchBytes: 64 * 1024,
      batchMs: LONG_WINDOW_MS,
    });
    collector.start();
  });

  afterEach(() => {
    collector.close();
    runtime.close();
    vi.useRealTimers();
  });

  async function run(name: string): Promise<string> {
    const id = await runtime.create({
      deviceId: 'dev-1',
      app: name,
      appRevision: 1,
      specHash: 'h',
      spec: { name: 'task', image: 'task:v1' },
    });
    await runtime.start(id);
    return id;
  }

  /** Starts a flush and reports whether it has resolved, as timers (the engine's reads) move on. */
  function flushing(ids: string[]): { done: () => boolean; promise: Promise<void> } {
    let resolved = false;
    const promise = collector.flush(ids).then(() => {
      resolved = true;
    });
    return { done: () => resolved, promise };
  }

  it('sends the lines of a stopped container at once, long before the batch window, and resolves once the hub acknowledged them', async () => {
    const id = await run('job-a');
    collector.refresh();
    await vi.advanceTimersByTimeAsync(1);
    runtime.writeLog(id, 'stdout', 'one');
    runtime.writeLog(id, 'stdout', 'two');
    runtime.kill(id, 0);
    const flush = flushing([id]);
    await vi.advanceTimersByTimeAsync(5);
    expect(link.lines()).toEqual(['one', 'two']);
    // Sent, not yet acknowledged: the runner must not report yet.
    expect(flush.done()).toBe(false);
    collector.settled(link.batches.map((b) => Buffer.from(JSON.stringify(b))));
    await flush.promise;
    expect(flush.done()).toBe(true);
  });

  it('makes a second flush wait for the batch an earlier one sent with its lines in it', async () => {
    const a = await run('job-d');
    const b = await run('job-e');
    collector.refresh();
    await vi.advanceTimersByTimeAsync(1);
    runtime.writeLog(a, 'stdout', 'from a');
    runtime.writeLog(b, 'stdout', 'from b');
    runtime.kill(a, 0);
    runtime.kill(b, 0);
    const first = flushing([a]);
    await vi.advanceTimersByTimeAsync(5);
    // The first flush took every waiting line, b's too.
    expect(link.lines()).toEqual(['from a', 'from b']);
    const second = flushing([b]);
    await vi.advanceTimersByTimeAsync(5);
    expect(link.batches).toHaveLength(1);
    expect(second.done()).toBe(false);
    collector.settled(link.batches.map((batch) => Buffer.from(JSON.stringify(batch))));
    await Promise.all([first.promise, second.promise]);
  });

  it('reads a container that ran and stopped between two looks, which no follow had seen', async () => {
    const id = await run('job-b');
    runtime.writeLog(id, 'stdout', 'quick');
    runtime.kill(id, 0);
    link.connected = false;
    const flush = flushing([id]);
    await vi.advanceTimersByTimeAsync(5);
    expect(link.lines()).toEqual(['quick']);
    // With the link down nothing is waited for: no report can go out before the lines anyway.
    expect(flush.done()).toBe(true);
  });

  it('resolves for a container that is gone, and once the collector closes', async () => {
    link.connected = false;
    const gone = flushing(['0123456789ab']);
    await vi.advanceTimersByTimeAsync(5);
    expect(gone.done()).toBe(true);

    link.connected = true;
    const id = await run('job-c');
    runtime.writeLog(id, 'stdout', 'last');
    runtime.kill(id, 0);
    const flush = flushing([id]);
    await vi.advanceTimersByTimeAsync(5);
    expect(link.lines()).toEqual(['last']);
    expect(flush.done()).toBe(false);
    collector.close();
    await flush.promise;
  });
});
