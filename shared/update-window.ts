/**
 * Update windows (`spec.update.window`, a job's `spec.window`): when a device
 * may do disruptive work, on its own clock. Pure: the time comes in, so every
 * case (a window across midnight, a daylight-saving change, a weekday range
 * that wraps) is a unit test with a fixed instant.
 *
 * The window is local wall time in its time zone: `from` ≤ t < `to` on a day
 * `days` names; with `to` before `from` it runs past midnight into the next
 * day, and belongs to the day it opened on. Time zones come from the ICU data
 * Node ships with (Intl), so an unknown zone is refused when a spec is checked.
 *
 * Daylight-saving changes follow the wall clock: a window opening at a time
 * the change to summer time skips opens at the change (one lying wholly in
 * the skipped hour does not open that night); on the night clocks go back the
 * repeated hour is lived twice, and a window that starts or ends inside it
 * opens twice. `opensAt` and `closesAt` are always after `now` and are where
 * the state really changes, so a timer set at either never fires into the
 * same state again.
 */
import type { UpdateWindow } from './schemas/spec.js';
import type { ValidationIssue } from './validate.js';

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const DAY_S = 86_400;

export interface WindowState {
  open: boolean;
  /** While closed: when it next opens. */
  opensAt?: Date;
  /** While open: when it closes. */
  closesAt?: Date;
}

/** The device's own zone: its TZ, else what the system says (UTC in most containers). */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** What a schema cannot check: a zone Intl knows, and a window that is not empty. */
export function windowIssues(window: UpdateWindow, path: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (window.timezone !== undefined && !isTimeZone(window.timezone)) {
    issues.push({
      path: `${path}.timezone`,
      message: `unknown time zone "${window.timezone}": use an IANA name such as Europe/Berlin or UTC`,
    });
  }
  if (clockSeconds(window.from) === clockSeconds(window.to)) {
    issues.push({ path: `${path}.to`, message: 'must differ from "from": the window would be empty' });
  }
  return issues;
}

export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** `mon-fri 02:00–04:00 Europe/Berlin`, for messages. */
export function describeWindow(window: UpdateWindow, zone = window.timezone ?? localTimeZone()): string {
  return `${window.days ? `${window.days.join(',')} ` : ''}${window.from}–${window.to} ${zone}`;
}

/** Whether the window is open at `now`, and when it next changes. */
export function windowState(window: UpdateWindow, now: Date, zone = window.timezone ?? localTimeZone()): WindowState {
  const clock = new ZoneClock(zone);
  const isOpen = openAt(window, clock);
  const nowS = Math.floor(now.getTime() / 1000);
  const open = isOpen(nowS);
  // The state can change only where the wall clock reads `from` or `to`, or
  // where a daylight-saving change jumps over one or back across one: the
  // first such instant ahead where the state differs is the answer. Days are
  // looked at in turn, and one more after the first with an answer, since a
  // change of offset can put a day's first instant before the last of the
  // day before. Two weeks and a day cover a weekly window that the change to
  // summer time skipped (02:00–02:45 on that Sunday).
  const wallNow = nowS + clock.offsetS(nowS);
  const midnight = wallNow - (((wallNow % DAY_S) + DAY_S) % DAY_S);
  const bounds = [clockSeconds(window.from), clockSeconds(window.to)];
  const candidates: number[] = [];
  let next: number | undefined;
  let lastDay = 15;
  for (let day = 0; day <= lastDay; day++) {
    for (const bound of bounds) candidates.push(...clock.reaches(midnight + day * DAY_S + bound));
    next = candidates
      .filter((t) => t > nowS)
      .sort((a, b) => a - b)
      .find((t) => isOpen(t) !== open);
    if (next !== undefined) lastDay = Math.min(lastDay, day + 1);
  }
  if (next === undefined) return { open };
  return open ? { open, closesAt: new Date(next * 1000) } : { open, opensAt: new Date(next * 1000) };
}

/** Whether the window is open at an instant (seconds since the epoch), by the wall clock there. */
function openAt(window: UpdateWindow, clock: ZoneClock): (instantS: number) => boolean {
  const days = dayMask(window.days);
  const from = clockSeconds(window.from);
  const to = clockSeconds(window.to);
  return (instantS) => {
    const { weekday: today, seconds: t } = clock.wallClock(instantS);
    const yesterday = (today + 6) % 7;
    if (from < to) return days[today] === true && t >= from && t < to;
    return (days[today] === true && t >= from) || (days[yesterday] === true && t < to);
  };
}

/** Seven flags, Sunday first; absent `days` is every day. A range wraps (`sat-mon`). */
function dayMask(days: readonly string[] | undefined): boolean[] {
  if (!days) return Array(7).fill(true);
  const mask = Array<boolean>(7).fill(false);
  for (const entry of days) {
    const [first, last = first] = entry.split('-') as [string, string?];
    const start = WEEKDAYS.indexOf(first as (typeof WEEKDAYS)[number]);
    const end = WEEKDAYS.indexOf(last as (typeof WEEKDAYS)[number]);
    for (let day = start, n = 0; n < 7; day = (day + 1) % 7, n++) {
      mask[day] = true;
      if (day === end) break;
    }
  }
  return mask;
}

function clockSeconds(text: string): number {
  const [h = 0, m = 0, s = 0] = text.split(':').map(Number);
  return h * 3600 + m * 60 + s;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function format(zone: string): Intl.DateTimeFormat {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(zone, f);
  }
  return f;
}

interface WallClock {
  weekday: number;
  seconds: number;
  /** The zone's offset from UTC at this instant, in seconds. */
  offsetS: number;
}

/** One zone's wall clock, in whole seconds since the epoch: what it reads at an instant, and back. */
class ZoneClock {
  private readonly seen = new Map<number, WallClock>();

  constructor(private readonly zone: string) {}

  wallClock(instantS: number): WallClock {
    let wall = this.seen.get(instantS);
    if (!wall) {
      const parts: Record<string, string> = {};
      for (const part of format(this.zone).formatToParts(new Date(instantS * 1000))) parts[part.type] = part.value;
      const n = (type: string) => Number(parts[type]);
      const asUtcS = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second')) / 1000;
      wall = {
        weekday: WEEKDAYS.indexOf((parts.weekday ?? '').toLowerCase().slice(0, 3) as (typeof WEEKDAYS)[number]),
        seconds: n('hour') * 3600 + n('minute') * 60 + n('second'),
        offsetS: asUtcS - instantS,
      };
      this.seen.set(instantS, wall);
    }
    return wall;
  }

  offsetS(instantS: number): number {
    return this.wallClock(instantS).offsetS;
  }

  /**
   * The instants at which the wall clock reaches `wall` (seconds since the
   * epoch as if the zone were UTC): where it reads it (twice in the hour a
   * change back repeats), and where a change jumps over it or back across it.
   */
  reaches(wall: number): number[] {
    // The offsets a day either side: at most one change between them.
    const [early, late] = [this.offsetS(wall - DAY_S), this.offsetS(wall + DAY_S)] as [number, number];
    const reads = [...new Set([wall - early, wall - late])].filter((t) => t + this.offsetS(t) === wall);
    if (reads.length === 1) return reads;
    // Repeated (the two instants that read it) or skipped (neither does): the change lies between the two guesses.
    let before = Math.min(wall - early, wall - late);
    let after = Math.max(wall - early, wall - late);
    const offsetBefore = this.offsetS(before);
    while (after - before > 1) {
      const mid = Math.floor((before + after) / 2);
      if (this.offsetS(mid) === offsetBefore) before = mid;
      else after = mid;
    }
    return [...reads, after];
  }
}
