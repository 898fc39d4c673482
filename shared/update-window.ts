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
  const days = dayMask(window.days);
  const from = clockSeconds(window.from);
  const to = clockSeconds(window.to);
  const local = wallClock(now, zone);
  const t = local.seconds;
  const today = local.weekday;
  const yesterday = (today + 6) % 7;
  if (from < to) {
    if (days[today] && t >= from && t < to) return { open: true, closesAt: at(now, zone, to - t) };
  } else {
    if (days[today] && t >= from) return { open: true, closesAt: at(now, zone, DAY_S - t + to) };
    if (days[yesterday] && t < to) return { open: true, closesAt: at(now, zone, to - t) };
  }
  for (let ahead = 0; ahead <= 7; ahead++) {
    const day = (today + ahead) % 7;
    const delta = ahead * DAY_S + from - t;
    if (days[day] && delta > 0) return { open: false, opensAt: at(now, zone, delta) };
  }
  return { open: false };
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
  /** The zone's offset from UTC at this instant, in ms. */
  offsetMs: number;
}

function wallClock(instant: Date, zone: string): WallClock {
  const parts: Record<string, string> = {};
  for (const part of format(zone).formatToParts(instant)) parts[part.type] = part.value;
  const n = (type: string) => Number(parts[type]);
  const asUtc = Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second'));
  return {
    weekday: WEEKDAYS.indexOf((parts.weekday ?? '').toLowerCase().slice(0, 3) as (typeof WEEKDAYS)[number]),
    seconds: n('hour') * 3600 + n('minute') * 60 + n('second'),
    offsetMs: asUtc - Math.floor(instant.getTime() / 1000) * 1000,
  };
}

/**
 * The instant `deltaS` seconds of wall time after `now`: a daylight-saving
 * change between the two moves it by the change, so 02:00 stays 02:00.
 */
function at(now: Date, zone: string, deltaS: number): Date {
  const naive = new Date(Math.floor(now.getTime() / 1000) * 1000 + deltaS * 1000);
  const shift = wallClock(naive, zone).offsetMs - wallClock(now, zone).offsetMs;
  return new Date(naive.getTime() - shift);
}
