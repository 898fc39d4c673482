/** The downlink token bucket over a manual clock: rate, burst, FIFO order, aborts, late timers. */
import { describe, expect, it } from 'vitest';
import { defaultBurst, type PacerClock, TokenBucket, unlimited } from '../../agent/images/rate-limit.js';

/** A clock whose time moves only when the test says; due timers fire in order as it moves. */
class ManualClock implements PacerClock {
  private time = 0;
  private nextId = 1;
  private timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward by `ms`, firing each due timer at its own time (or `lateMs` after it), letting promises settle between. */
  async advance(ms: number, lateMs = 0): Promise<void> {
    const until = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at + lateMs <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at + lateMs);
      due[1].fn();
      await settle();
    }
    this.time = until;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

const KiB = 1024;
const never = new AbortController().signal;

/** One downloader taking `chunk` bytes at a time until `total`; returns [time, granted so far] after each take. */
function drain(bucket: TokenBucket, clock: ManualClock, total: number, chunk: number) {
  const log: [number, number][] = [];
  let done = false;
  const running = (async () => {
    for (let taken = 0; taken < total; taken += chunk) {
      await bucket.take(chunk, never);
      log.push([clock.now(), bucket.granted]);
    }
    done = true;
  })();
  return { log, running, isDone: () => done };
}

describe('TokenBucket', () => {
  it('paces a downloader to the rate: never more than the burst plus rate × time, and the whole takes total / rate', async () => {
    const clock = new ManualClock();
    const rate = 100 * KiB;
    const bucket = new TokenBucket(rate, { burst: 32 * KiB, clock });
    const total = 1_024 * KiB;
    const run = drain(bucket, clock, total, 16 * KiB);
    while (!run.isDone()) await clock.advance(10);
    await run.running;

    for (const [time, granted] of run.log) expect(granted).toBeLessThanOrEqual(32 * KiB + (rate * time) / 1000);
    const finished = run.log.at(-1)![0];
    // The first 32 KiB pass at once, the rest at the rate.
    expect(finished).toBeGreaterThanOrEqual(((total - 32 * KiB) * 1000) / rate - 10);
    expect(finished).toBeLessThanOrEqual(((total - 32 * KiB) * 1000) / rate + 20);
    expect(bucket.granted).toBe(total);
  });

  it('does not save idle time up: after a long pause only the burst passes at once', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10 * KiB, { burst: 8 * KiB, clock });
    await clock.advance(60_000);
    await bucket.take(8 * KiB, never);
    let second = false;
    void bucket.take(1 * KiB, never).then(() => {
      second = true;
    });
    await clock.advance(99);
    expect(second).toBe(false);
    await clock.advance(1);
    expect(second).toBe(true);
  });

  it('lets a take larger than the burst through once the bucket is full, and makes the next taker wait off the debt', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(10 * KiB, { burst: 10 * KiB, clock });
    await bucket.take(10 * KiB, never);
    const order: string[] = [];
    void bucket.take(30 * KiB, never).then(() => order.push(`big@${clock.now()}`));
    void bucket.take(1 * KiB, never).then(() => order.push(`small@${clock.now()}`));
    await clock.advance(5_000);
    // The big take waits for a full bucket (1 s), leaves 20 KiB of debt; the small one waits for it to be paid (2 s) plus its own 0.1 s.
    expect(order).toEqual(['big@1000', 'small@3100']);
  });

  it('serves takers in the order they came, even when a later one would fit sooner', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * KiB, { burst: 4 * KiB, clock });
    await bucket.take(4 * KiB, never);
    const order: string[] = [];
    void bucket.take(3 * KiB, never).then(() => order.push('a'));
    void bucket.take(1 * KiB, never).then(() => order.push('b'));
    void bucket.take(2 * KiB, never).then(() => order.push('c'));
    await clock.advance(1_500);
    expect(order).toEqual([]);
    await clock.advance(1_500);
    expect(order).toEqual(['a']);
    await clock.advance(3_000);
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('rejects an aborted take with its reason, spends nothing for it, and serves the next one sooner', async () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1 * KiB, { burst: 1 * KiB, clock });
    await bucket.take(1 * KiB, never);
    const controller = new AbortController();
    const aborted = bucket.take(1 * KiB, controller.signal);
    let next = false;
    void bucket.take(1 * KiB, never).then(() => {
      next = true;
    });
    await clock.advance(500);
    controller.abort(new Error('cancelled'));
    await expect(aborted).rejects.toThrow('cancelled');
    expect(bucket.waiting).toBe(1);
    await clock.advance(500);
    expect(next).toBe(true);
    expect(bucket.granted).toBe(2 * KiB);
    await expect(bucket.take(1, controller.signal)).rejects.toThrow('cancelled');
  });

  it('keeps the long-run rate when its timers fire late (a busy event loop)', async () => {
    const clock = new ManualClock();
    const rate = 64 * KiB;
    const bucket = new TokenBucket(rate, { burst: 16 * KiB, clock });
    const total = 640 * KiB;
    const run = drain(bucket, clock, total, 16 * KiB);
    // Every timer fires 400 ms late, beyond the 250 ms the burst covers, within the second of catching up.
    while (!run.isDone()) await clock.advance(50, 400);
    await run.running;
    const finished = run.log.at(-1)![0];
    expect(finished).toBeLessThanOrEqual(((total - 16 * KiB) * 1000) / rate + 450);
    for (const [time, granted] of run.log) expect(granted).toBeLessThanOrEqual(16 * KiB + (rate * time) / 1000);
  });

  it('refuses a rate or burst that is not a positive number', () => {
    expect(() => new TokenBucket(0)).toThrow('a rate limit must be a positive number of bytes per second, not 0');
    expect(() => new TokenBucket(Number.NaN)).toThrow(RangeError);
    expect(() => new TokenBucket(1000, { burst: -1 })).toThrow('a burst must be a positive number of bytes, not -1');
  });

  it('picks a burst of a quarter second at the rate, within 16 KiB and 1 MiB', () => {
    expect(defaultBurst(256 * KiB)).toBe(64 * KiB);
    expect(defaultBurst(1 * KiB)).toBe(16 * KiB);
    expect(defaultBurst(100 * 1024 * KiB)).toBe(1024 * KiB);
  });
});

describe('unlimited', () => {
  it('grants at once, and rejects once aborted', async () => {
    await expect(unlimited.take(1e9, never)).resolves.toBeUndefined();
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(unlimited.take(1, controller.signal)).rejects.toThrow('stop');
  });
});
