/**
 * The outbox over real segment files with an injected clock: priority order,
 * the memory tier that keeps an online device off its flash, spilling,
 * surviving a restart, the byte cap (lowest class, oldest first), TTLs, and
 * taking back what was in flight.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeDrops } from '../../agent/outbox/drop-report.js';
import { Outbox, type OutboxOptions } from '../../agent/outbox/outbox.js';
import { OutboxFile } from '../../agent/outbox/outbox-file.js';
import { BytePacer } from '../../agent/outbox/pacer.js';
import { Cleanup } from '../support/cleanup.js';
import { drain } from '../support/outbox-drain.js';
import { scratchDir } from '../support/scratch.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function tempPath(): string {
  return join(scratchDir('flotilla-outbox-'), 'outbox.db');
}

function open(path: string, clock: { t: number }, options: Partial<OutboxOptions> = {}): Outbox {
  const outbox = new Outbox({ path, maxBytes: 1024 * 1024, now: () => clock.t, writeIntervalMs: 3_600_000, ...options });
  cleanup.add('outbox', () => outbox.close());
  return outbox;
}

/** Messages on disk, as the next start would find them: read by a second, separate reader. */
function rowsOnDisk(path: string): number {
  const reader = new OutboxFile(path);
  try {
    return Object.values(reader.totals()).reduce((sum, t) => sum + t.items, 0);
  } finally {
    reader.close();
  }
}

const msg = (text: string) => Buffer.from(text);

describe('outbox', () => {
  it('offers events before logs before metrics, oldest first within a class', () => {
    const clock = { t: 0 };
    const outbox = open(tempPath(), clock);
    outbox.push('metrics', msg('m1'));
    outbox.push('logs', msg('l1'));
    outbox.push('events', msg('e1'));
    outbox.push('logs', msg('l2'));
    outbox.push('events', msg('e2'));
    expect(drain(outbox)).toEqual(['e1', 'e2', 'l1', 'l2', 'm1']);
    expect(outbox.stats).toMatchObject({ messages: 0, bytes: 0 });
  });

  it('never writes messages that are acknowledged before they wait spillAfterMs', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const outbox = open(path, clock);
    for (let i = 0; i < 100; i++) {
      outbox.push('logs', msg(`line ${i}`));
      clock.t += 500;
      drain(outbox);
      outbox.tick();
    }
    expect(rowsOnDisk(path)).toBe(0);
  });

  it('writes messages that wait, keeps offering them from the file, and removes them once acknowledged', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const outbox = open(path, clock);
    for (let i = 1; i <= 5; i++) outbox.push('logs', msg(`l${i}`));
    clock.t += 1_000;
    outbox.tick();
    expect(rowsOnDisk(path)).toBe(5);
    outbox.push('logs', msg('l6'));
    expect(drain(outbox)).toEqual(['l1', 'l2', 'l3', 'l4', 'l5', 'l6']);
    outbox.tick();
    expect(rowsOnDisk(path)).toBe(0);
  });

  it('spills at once when the memory tier passes its bound', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const outbox = open(path, clock, { memoryBytes: 1000 });
    for (let i = 0; i < 11; i++) outbox.push('logs', Buffer.alloc(100, 'x'));
    expect(rowsOnDisk(path)).toBe(11);
  });

  it('keeps what was not acknowledged across a restart, and offers it again in order', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const first = open(path, clock);
    first.push('events', msg('e1'));
    first.push('logs', msg('l1'));
    first.push('events', msg('e2'));
    // e1 is acknowledged; e2 was sent but its ack never came (the agent died).
    const e1 = first.next()!;
    first.take(e1);
    first.ack(e1);
    first.take(first.next()!);
    first.close();

    const second = open(path, clock);
    expect(second.stats.messages).toBe(2);
    expect(drain(second)).toEqual(['e2', 'l1']);
    second.close();
    expect(rowsOnDisk(path)).toBe(0);
  });

  it('offers in-flight messages again after releaseAll, and only once after release', () => {
    const clock = { t: 0 };
    const outbox = open(tempPath(), clock);
    for (let i = 1; i <= 4; i++) outbox.push('logs', msg(`l${i}`));
    clock.t += 2_000;
    outbox.tick(); // l1..l4 now in the file
    outbox.push('logs', msg('l5')); // and one in memory
    const taken = [outbox.next()!, outbox.next()];
    expect(taken[1]).toBe(taken[0]); // next() only peeks
    const l1 = taken[0]!;
    outbox.take(l1);
    const l2 = outbox.next()!;
    outbox.take(l2);
    outbox.ack(l1);
    outbox.releaseAll(); // the link dropped with l2 in flight
    expect(drain(outbox)).toEqual(['l2', 'l3', 'l4', 'l5']);

    outbox.push('logs', msg('l6'));
    const l6 = outbox.next()!;
    outbox.take(l6);
    expect(outbox.next()).toBeUndefined();
    outbox.release(l6);
    expect(drain(outbox)).toEqual(['l6']);
  });

  it('drops the lowest class oldest first when over its cap, and reports it', () => {
    const clock = { t: 0 };
    const outbox = open(tempPath(), clock, { maxBytes: 1000 });
    const hundred = (tag: string) => Buffer.from(tag.padEnd(100, '.'));
    for (let i = 1; i <= 4; i++) outbox.push('events', hundred(`e${i}`));
    for (let i = 1; i <= 3; i++) outbox.push('logs', hundred(`l${i}`));
    clock.t += 2_000;
    outbox.tick(); // some in the file, some in memory: both tiers are dropped from
    for (let i = 1; i <= 5; i++) outbox.push('metrics', hundred(`m${i}`));
    // 12 messages of 100 bytes over a 1000-byte cap: the two oldest metric samples went.
    expect(outbox.stats).toMatchObject({ messages: 10, bytes: 1000, dropped: 2 });
    for (let i = 5; i <= 9; i++) outbox.push('events', hundred(`e${i}`));
    // Five more events: the other three metric samples, then the two oldest log batches.
    const sent = drain(outbox).map((s) => s.replace(/\.+$/, ''));
    expect(sent).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'l3']);
    const drops = outbox.takeDrops()!;
    expect(drops.metrics.full).toEqual({ messages: 5, bytes: 500 });
    expect(drops.logs.full).toEqual({ messages: 2, bytes: 200 });
    expect(drops.events.full.messages).toBe(0);
    expect(describeDrops(drops)).toBe('dropped undelivered messages, outbox full: 2 logs (200 B), 5 metrics (500 B)');
    expect(outbox.takeDrops()).toBeUndefined();
  });

  it('drops a class past its TTL, in memory and in the file', () => {
    const clock = { t: 0 };
    const outbox = open(tempPath(), clock, { ttlMs: { metrics: 10_000 } });
    outbox.push('metrics', msg('old-file'));
    clock.t += 2_000;
    outbox.tick();
    outbox.push('metrics', msg('old-memory'));
    outbox.push('events', msg('event'));
    clock.t += 9_000;
    outbox.push('metrics', msg('fresh'));
    clock.t += 2_000;
    outbox.tick();
    expect(outbox.takeDrops()?.metrics.expired.messages).toBe(2);
    expect(drain(outbox)).toEqual(['event', 'fresh']);
  });

  it('keeps its accounting when a message is dropped while in flight and its ack comes later', () => {
    const clock = { t: 0 };
    const outbox = open(tempPath(), clock, { maxBytes: 300 });
    outbox.push('metrics', Buffer.alloc(100));
    clock.t += 2_000;
    outbox.tick();
    const inFlight = outbox.next()!;
    outbox.take(inFlight);
    outbox.push('events', Buffer.alloc(100));
    outbox.push('events', Buffer.alloc(100));
    outbox.push('events', Buffer.alloc(100)); // over the cap: the in-flight metric sample is the lowest and oldest
    outbox.ack(inFlight);
    expect(outbox.stats).toMatchObject({ messages: 3, bytes: 300 });
    expect(drain(outbox)).toHaveLength(3);
    expect(outbox.stats).toMatchObject({ messages: 0, bytes: 0 });
  });

  it('tells when each message leaves memory for good: acknowledged, written to the file, or dropped, once each', () => {
    const clock = { t: 0 };
    const settled: string[] = [];
    const outbox = open(tempPath(), clock, {
      maxBytes: 250,
      onSettled: (cls, payloads) => settled.push(...payloads.map((p) => `${cls}:${p.toString().replace(/\.+$/, '')}`)),
    });
    const hundred = (tag: string) => Buffer.from(tag.padEnd(100, '.'));
    outbox.push('logs', hundred('l1'));
    const first = outbox.next()!;
    outbox.take(first);
    expect(settled).toEqual([]);
    outbox.ack(first);
    expect(settled).toEqual(['logs:l1']);
    outbox.push('logs', hundred('l2'));
    clock.t += 1_000;
    outbox.tick();
    expect(settled).toEqual(['logs:l1', 'logs:l2']);
    // Acknowledged from the file: it settled when written.
    drain(outbox);
    outbox.push('events', hundred('e1'));
    outbox.push('logs', hundred('l3'));
    outbox.push('events', hundred('e2'));
    expect(settled).toEqual(['logs:l1', 'logs:l2', 'logs:l3']);
    // Over the cap again: the new metric sample is the lowest class and goes at once.
    outbox.push('metrics', hundred('m1'));
    expect(settled).toEqual(['logs:l1', 'logs:l2', 'logs:l3', 'metrics:m1']);
  });

  it('keeps everything in RAM with :memory:', () => {
    const clock = { t: 0 };
    const outbox = open(':memory:', clock);
    outbox.push('events', msg('e1'));
    clock.t += 2_000;
    outbox.tick();
    expect(drain(outbox)).toEqual(['e1']);
  });
});

describe('byte pacer', () => {
  it('lets a burst through, then one second of bytes per second', () => {
    const clock = { t: 0 };
    const pacer = new BytePacer(1000, 1000, () => clock.t);
    expect(pacer.tryTake(600)).toBe(0);
    expect(pacer.tryTake(400)).toBe(0);
    expect(pacer.tryTake(500)).toBe(500);
    clock.t += 500;
    expect(pacer.tryTake(500)).toBe(0);
  });

  it('sends a message larger than the burst once the bucket is full, then waits off the debt', () => {
    const clock = { t: 0 };
    const pacer = new BytePacer(1000, 1000, () => clock.t);
    expect(pacer.tryTake(3000)).toBe(0);
    expect(pacer.tryTake(10)).toBe(2010);
    clock.t += 2010;
    expect(pacer.tryTake(10)).toBe(0);
  });

  it('is unlimited at 0 bytes per second', () => {
    const pacer = new BytePacer(0);
    for (let i = 0; i < 100; i++) expect(pacer.tryTake(1e9)).toBe(0);
  });
});
