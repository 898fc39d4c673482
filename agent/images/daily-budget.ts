/**
 * The daily download budget (`--download-budget`): at most `limit` image
 * bytes per day, the day being the device's own (its clock, in its zone: TZ,
 * else what the system says, as update windows read it). Once a day's bytes
 * are spent, downloads wait for the device's next midnight, and say so.
 *
 * Invariants:
 * - Bytes are counted as they are taken (download-blobs.ts takes each chunk
 *   once it has it, before reading on), so a day overshoots its limit by at
 *   most the last chunk; what is counted is what crossed the link.
 * - A day is a calendar date in the zone, not 24 hours: the night clocks go
 *   forward lasts 23 hours, the night they go back 25, and a zone whose
 *   change skips midnight begins its day at 01:00. The next day begins at
 *   the first instant whose date differs (found by bisection on Intl's
 *   reading of the zone), so a timer set then never fires into the same day.
 * - A wait is re-checked at least every RECHECK_MAX_MS: timers run on the
 *   monotonic clock, and a wall clock set meanwhile (NTP after a boot)
 *   moves midnight.
 * - The count of the day survives a restart: the caller persists `day()`
 *   with the download totals (download-totals.ts) and hands it back.
 */
import { localTimeZone } from '../../shared/index.js';
import { abortableSleep, type SleepTimers } from '../abortable-sleep.js';
import type { Pacer } from './types.js';

/** What is persisted of a budget: the day it counts, and its bytes. */
export interface BudgetDay {
  /** `YYYY-MM-DD` in the budget's zone. */
  day: string;
  used: number;
}

export interface BudgetState extends BudgetDay {
  limit: number;
  /** When the next day begins. */
  resetsAt: Date;
}

/** Timers, injectable so a unit test can drive a day boundary. */
export type BudgetTimers = SleepTimers;

export interface DailyBudgetOptions {
  /** Bytes per day; more than zero. */
  limit: number;
  /** An IANA zone; default the device's (localTimeZone). */
  zone?: string;
  now?: () => number;
  timers?: BudgetTimers;
  /** The day persisted by an earlier process: counted on if it is still today. */
  restored?: BudgetDay;
  /** Once per day the budget is spent, when it first holds bytes back: when downloads go on. */
  onSpent?: (resetsAt: Date) => void;
  /** Bytes were counted (the caller persists `day()` now and then). */
  onCounted?: () => void;
}

/** The longest a wait sleeps before it reads the wall clock again. */
export const RECHECK_MAX_MS = 15 * 60_000;

const realTimers: BudgetTimers = {
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class DailyBudget implements Pacer {
  private current: BudgetDay;
  /** The day whose spending was announced (onSpent), so it is said once. */
  private announced: string | undefined;
  private readonly zone: string;
  private readonly now: () => number;
  private readonly timers: BudgetTimers;

  constructor(private readonly options: DailyBudgetOptions) {
    if (!(options.limit > 0)) throw new Error(`a daily download budget must be more than 0 bytes (got ${options.limit})`);
    this.zone = options.zone ?? localTimeZone();
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? realTimers;
    const today = localDate(this.now(), this.zone);
    this.current = options.restored?.day === today ? { day: today, used: options.restored.used } : { day: today, used: 0 };
  }

  /** Counts `bytes`; once today's limit is reached, resolves only when the next day begins. */
  async take(bytes: number, signal: AbortSignal): Promise<void> {
    this.roll();
    this.current.used += bytes;
    this.options.onCounted?.();
    await this.room(signal);
  }

  /** Resolves at once while today has room, else when the next day begins (to start a download without spending a chunk first). */
  async room(signal: AbortSignal): Promise<void> {
    for (;;) {
      this.roll();
      if (this.current.used < this.options.limit) return;
      const resetsAt = nextDayStart(this.now(), this.zone);
      if (this.announced !== this.current.day) {
        this.announced = this.current.day;
        this.options.onSpent?.(resetsAt);
      }
      await abortableSleep(Math.min(Math.max(resetsAt.getTime() - this.now(), 1), RECHECK_MAX_MS), signal, this.timers);
    }
  }

  /** Whether today's bytes are spent. */
  get spent(): boolean {
    this.roll();
    return this.current.used >= this.options.limit;
  }

  /** The day and its bytes, to persist. */
  day(): BudgetDay {
    this.roll();
    return { ...this.current };
  }

  /** As the state report shows it (DownloadBudget). */
  state(): BudgetState {
    this.roll();
    return { ...this.current, limit: this.options.limit, resetsAt: nextDayStart(this.now(), this.zone) };
  }

  private roll(): void {
    const today = localDate(this.now(), this.zone);
    if (today !== this.current.day) this.current = { day: today, used: 0 };
  }
}

const dateFormats = new Map<string, Intl.DateTimeFormat>();

/** `YYYY-MM-DD` as the zone's wall clock reads the instant. */
export function localDate(instantMs: number, zone: string): string {
  let format = dateFormats.get(zone);
  if (!format) {
    // en-CA writes dates as YYYY-MM-DD.
    format = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dateFormats.set(zone, format);
  }
  return format.format(new Date(instantMs));
}

/** Steps shorter than any day, so widening cannot jump over one. */
const STEP_S = 6 * 3600;

/** The first instant (to the second) after `instantMs` whose date in the zone differs from its own. */
export function nextDayStart(instantMs: number, zone: string): Date {
  const today = localDate(instantMs, zone);
  let before = Math.floor(instantMs / 1000);
  let after = before + STEP_S;
  while (localDate(after * 1000, zone) === today) {
    before = after;
    after += STEP_S;
  }
  while (after - before > 1) {
    const mid = Math.floor((before + after) / 2);
    if (localDate(mid * 1000, zone) === today) before = mid;
    else after = mid;
  }
  return new Date(after * 1000);
}
