/**
 * The daily download budget (agent/images/daily-budget.ts) on an injected
 * clock and timers: bytes counted per day of the device's zone, a spent day
 * holding downloads until the zone's next midnight, which on a night clocks
 * change is 23 or 25 hours away (or, where the change skips midnight, at
 * 01:00); the day's count survives a restart; the pacers chain in order.
 */
import { describe, expect, it } from 'vitest';
import { type BudgetTimers, DailyBudget, localDate, nextDayStart, RECHECK_MAX_MS } from '../../agent/images/daily-budget.js';
import { allOf } from '../../agent/images/pacer.js';
import type { Pacer } from '../../agent/images/types.js';

/** A clock and timers the test moves by hand. */
class ManualTime implements BudgetTimers {
  private pending: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;

  constructor(public nowMs: number) {}

  readonly now = () => this.nowMs;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.pending.push({ at: this.nowMs + ms, fn, id });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((t) => t.id !== handle);
  }

  /** Moves the clock to `to`, firing every timer due by then in order, letting promises settle between. */
  async advanceTo(to: number): Promise<void> {
    for (;;) {
      await flush();
      const due = this.pending.filter((t) => t.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.pending = this.pending.filter((t) => t !== due);
      this.nowMs = due.at;
      due.fn();
    }
    this.nowMs = to;
    await flush();
  }

  get timers(): number {
    return this.pending.length;
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

const MiB = 1024 * 1024;
const never = new AbortController().signal;

function tracked(promise: Promise<void>): { done: () => boolean; promise: Promise<void> } {
  let settled = false;
  const p = promise.then(() => {
    settled = true;
  });
  return { done: () => settled, promise: p };
}

describe('day boundaries', () => {
  it('a day in UTC is 24 hours, the next begins at midnight', () => {
    const at = Date.parse('2026-12-06T15:30:00Z');
    expect(localDate(at, 'UTC')).toBe('2026-12-06');
    expect(nextDayStart(at, 'UTC').toISOString()).toBe('2026-12-07T00:00:00.000Z');
  });

  it("the night clocks go forward in Berlin: that day's midnight is 23 hours after the one before", () => {
    // 2026-03-29: 02:00 CET becomes 03:00 CEST.
    const dayStart = nextDayStart(Date.parse('2026-03-28T12:00:00Z'), 'Europe/Berlin');
    expect(dayStart.toISOString()).toBe('2026-03-28T23:00:00.000Z');
    const next = nextDayStart(dayStart.getTime(), 'Europe/Berlin');
    expect(next.toISOString()).toBe('2026-03-29T22:00:00.000Z');
    expect(next.getTime() - dayStart.getTime()).toBe(23 * 3_600_000);
  });

  it('the night clocks go back in Berlin: that day lasts 25 hours', () => {
    // 2026-10-25: 03:00 CEST becomes 02:00 CET.
    const dayStart = nextDayStart(Date.parse('2026-10-24T12:00:00Z'), 'Europe/Berlin');
    expect(dayStart.toISOString()).toBe('2026-10-24T22:00:00.000Z');
    const next = nextDayStart(dayStart.getTime(), 'Europe/Berlin');
    expect(next.getTime() - dayStart.getTime()).toBe(25 * 3_600_000);
    expect(localDate(next.getTime() - 1000, 'Europe/Berlin')).toBe('2026-10-25');
    expect(localDate(next.getTime(), 'Europe/Berlin')).toBe('2026-10-26');
  });

  it('where the change to summer time skips midnight (Santiago), the day begins at 01:00', () => {
    const next = nextDayStart(Date.parse('2026-09-05T20:00:00Z'), 'America/Santiago');
    expect(next.toISOString()).toBe('2026-09-06T04:00:00.000Z');
    expect(localDate(next.getTime(), 'America/Santiago')).toBe('2026-09-06');
  });
});

describe('DailyBudget', () => {
  it('lets bytes through until the day is spent, then holds them until the next midnight, saying so once', async () => {
    const time = new ManualTime(Date.parse('2026-12-06T22:00:00Z'));
    const spent: Date[] = [];
    const budget = new DailyBudget({ limit: 10 * MiB, zone: 'UTC', now: time.now, timers: time, onSpent: (at) => spent.push(at) });

    await budget.take(4 * MiB, never);
    await budget.take(4 * MiB, never);
    expect(budget.state()).toMatchObject({ day: '2026-12-06', used: 8 * MiB, limit: 10 * MiB });
    expect(spent).toEqual([]);

    // The chunk that crosses the limit is counted (it crossed the link) and holds the next read.
    const crossing = tracked(budget.take(4 * MiB, never));
    await time.advanceTo(time.nowMs + 60 * 60_000);
    expect(crossing.done()).toBe(false);
    expect(budget.spent).toBe(true);
    expect(spent.map((d) => d.toISOString())).toEqual(['2026-12-07T00:00:00.000Z']);

    // A second download the same day waits too, without a second announcement.
    const second = tracked(budget.room(never));
    await time.advanceTo(Date.parse('2026-12-06T23:59:59Z'));
    expect(second.done()).toBe(false);
    expect(crossing.done()).toBe(false);

    await time.advanceTo(Date.parse('2026-12-07T00:00:00Z'));
    expect(crossing.done()).toBe(true);
    expect(second.done()).toBe(true);
    expect(budget.state()).toMatchObject({ day: '2026-12-07', used: 0 });
    expect(spent).toHaveLength(1);
  });

  it('re-reads the wall clock at least every 15 minutes while it waits', async () => {
    const time = new ManualTime(Date.parse('2026-12-06T08:00:00Z'));
    const budget = new DailyBudget({ limit: MiB, zone: 'UTC', now: time.now, timers: time });
    const held = tracked(budget.take(MiB, never));
    await flush();
    expect(held.done()).toBe(false);
    // NTP sets the clock forward past midnight while the agent waits: the next look, at most 15 minutes on, sees the new day.
    time.nowMs = Date.parse('2026-12-07T00:05:00Z');
    await time.advanceTo(time.nowMs + RECHECK_MAX_MS);
    expect(held.done()).toBe(true);
  });

  it('waits through the 25-hour day clocks go back in Berlin', async () => {
    const time = new ManualTime(Date.parse('2026-10-24T22:30:00Z'));
    const spent: Date[] = [];
    const budget = new DailyBudget({ limit: MiB, zone: 'Europe/Berlin', now: time.now, timers: time, onSpent: (at) => spent.push(at) });
    expect(budget.state().day).toBe('2026-10-25');
    const held = tracked(budget.take(2 * MiB, never));
    await time.advanceTo(Date.parse('2026-10-25T22:00:00Z'));
    // 24 hours after the day began it is 23:00 in Berlin, still the same day.
    expect(held.done()).toBe(false);
    expect(spent[0]?.toISOString()).toBe('2026-10-25T23:00:00.000Z');
    await time.advanceTo(Date.parse('2026-10-25T23:00:00Z'));
    expect(held.done()).toBe(true);
    expect(budget.state().day).toBe('2026-10-26');
  });

  it('counts on from the day a previous process persisted, and starts afresh when that day is over', () => {
    const time = new ManualTime(Date.parse('2026-12-06T12:00:00Z'));
    const same = new DailyBudget({
      limit: 10 * MiB,
      zone: 'UTC',
      now: time.now,
      timers: time,
      restored: { day: '2026-12-06', used: 10 * MiB },
    });
    expect(same.spent).toBe(true);
    const older = new DailyBudget({
      limit: 10 * MiB,
      zone: 'UTC',
      now: time.now,
      timers: time,
      restored: { day: '2026-12-05', used: 10 * MiB },
    });
    expect(older.spent).toBe(false);
    expect(older.day()).toEqual({ day: '2026-12-06', used: 0 });
  });

  it('an abort while waiting rejects with the reason and leaves no timer', async () => {
    const time = new ManualTime(Date.parse('2026-12-06T12:00:00Z'));
    const budget = new DailyBudget({ limit: MiB, zone: 'UTC', now: time.now, timers: time });
    const controller = new AbortController();
    const held = budget.take(2 * MiB, controller.signal);
    await flush();
    expect(time.timers).toBe(1);
    controller.abort(new Error('superseded'));
    await expect(held).rejects.toThrow('superseded');
    expect(time.timers).toBe(0);
  });

  it('refuses a limit of 0', () => {
    expect(() => new DailyBudget({ limit: 0 })).toThrow(/more than 0 bytes/);
  });
});

describe('allOf', () => {
  it('passes bytes through every pacer in order, so a held budget does not spend the rate meanwhile', async () => {
    const seen: string[] = [];
    const pacer = (name: string): Pacer => ({
      take: async (bytes) => {
        seen.push(`${name}:${bytes}`);
      },
    });
    await allOf([pacer('budget'), undefined, pacer('rate')]).take(512, never);
    expect(seen).toEqual(['budget:512', 'rate:512']);
  });
});
