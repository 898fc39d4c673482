/**
 * Update windows evaluated at fixed instants (shared/update-window.ts): open
 * or closed, and when that next changes, for day lists and ranges, windows
 * past midnight, seconds, zones, the device's own zone and the nights the
 * clocks change. December 2026 in Europe/Berlin is UTC+1: Monday 7 December
 * 02:00 there is 01:00Z. Clocks go forward on 29 March 2026 at 01:00Z
 * (02:00 CET → 03:00 CEST) and back on 25 October 2026 at 01:00Z (03:00 CEST
 * → 02:00 CET); in America/New_York forward on 8 March (07:00Z), back on 1 November.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { validateAppSpec } from '../../shared/app-spec.js';
import type { UpdateWindow } from '../../shared/index.js';
import { describeWindow, localTimeZone, windowIssues, windowState } from '../../shared/update-window.js';

/** The state at `iso`, with instants as ISO strings so a failure reads as times. */
function state(window: UpdateWindow, iso: string, zone?: string) {
  const { open, opensAt, closesAt } = windowState(window, new Date(iso), ...(zone ? [zone] : []));
  return { open, ...(opensAt ? { opensAt: opensAt.toISOString() } : {}), ...(closesAt ? { closesAt: closesAt.toISOString() } : {}) };
}

const utc = (w: Omit<UpdateWindow, 'timezone'>): UpdateWindow => ({ ...w, timezone: 'UTC' });
const berlin = (w: Omit<UpdateWindow, 'timezone'>): UpdateWindow => ({ ...w, timezone: 'Europe/Berlin' });

describe('a window within one day', () => {
  const nightly = utc({ from: '02:00', to: '04:00' });

  it('is open from `from` (included) to `to` (excluded), and says when it closes', () => {
    expect(state(nightly, '2026-12-07T02:00:00.000Z')).toEqual({ open: true, closesAt: '2026-12-07T04:00:00.000Z' });
    expect(state(nightly, '2026-12-07T03:59:59.999Z')).toEqual({ open: true, closesAt: '2026-12-07T04:00:00.000Z' });
  });

  it('is closed before and after, and says when it next opens', () => {
    expect(state(nightly, '2026-12-07T01:59:59.999Z')).toEqual({ open: false, opensAt: '2026-12-07T02:00:00.000Z' });
    expect(state(nightly, '2026-12-07T04:00:00.000Z')).toEqual({ open: false, opensAt: '2026-12-08T02:00:00.000Z' });
    expect(state(nightly, '2026-12-07T23:00:00.000Z')).toEqual({ open: false, opensAt: '2026-12-08T02:00:00.000Z' });
  });

  it('takes HH:MM:SS to the second', () => {
    const window = utc({ from: '02:00:30', to: '02:10:15' });
    expect(state(window, '2026-12-07T02:00:29.900Z')).toEqual({ open: false, opensAt: '2026-12-07T02:00:30.000Z' });
    expect(state(window, '2026-12-07T02:00:30.000Z')).toEqual({ open: true, closesAt: '2026-12-07T02:10:15.000Z' });
    expect(state(window, '2026-12-07T02:10:15.000Z')).toEqual({ open: false, opensAt: '2026-12-08T02:00:30.000Z' });
  });
});

describe('days', () => {
  it('a range mon-fri: open on Friday, closed on the weekend until Monday', () => {
    const weekdays = utc({ days: ['mon-fri'], from: '02:00', to: '04:00' });
    expect(state(weekdays, '2026-12-04T03:00:00Z')).toEqual({ open: true, closesAt: '2026-12-04T04:00:00.000Z' });
    expect(state(weekdays, '2026-12-04T05:00:00Z')).toEqual({ open: false, opensAt: '2026-12-07T02:00:00.000Z' });
    expect(state(weekdays, '2026-12-05T03:00:00Z')).toEqual({ open: false, opensAt: '2026-12-07T02:00:00.000Z' });
    expect(state(weekdays, '2026-12-06T03:00:00Z')).toEqual({ open: false, opensAt: '2026-12-07T02:00:00.000Z' });
  });

  it('a list of single days: closed on the days between', () => {
    const window = utc({ days: ['mon', 'wed'], from: '02:00', to: '04:00' });
    expect(state(window, '2026-12-07T03:00:00Z')).toMatchObject({ open: true });
    expect(state(window, '2026-12-08T03:00:00Z')).toEqual({ open: false, opensAt: '2026-12-09T02:00:00.000Z' });
    expect(state(window, '2026-12-09T05:00:00Z')).toEqual({ open: false, opensAt: '2026-12-14T02:00:00.000Z' });
  });

  it('a range that wraps over the week end (sat-mon): Saturday, Sunday and Monday, not Tuesday to Friday', () => {
    const window = utc({ days: ['sat-mon'], from: '02:00', to: '04:00' });
    const openOn = ['2026-12-05', '2026-12-06', '2026-12-07', '2026-12-08', '2026-12-09', '2026-12-10', '2026-12-11'].map(
      (day) => state(window, `${day}T03:00:00Z`).open,
    );
    expect(openOn).toEqual([true, true, true, false, false, false, false]);
    expect(state(window, '2026-12-08T03:00:00Z')).toEqual({ open: false, opensAt: '2026-12-12T02:00:00.000Z' });
  });

  it('a single day waits a whole week once its window has passed', () => {
    const window = utc({ days: ['mon'], from: '02:00', to: '04:00' });
    expect(state(window, '2026-12-07T04:00:00Z')).toEqual({ open: false, opensAt: '2026-12-14T02:00:00.000Z' });
  });
});

describe('a window past midnight (22:00–04:00) belongs to the day it opens on', () => {
  const fridayNight = utc({ days: ['fri'], from: '22:00', to: '04:00' });

  it('opens on Friday evening and stays open into Saturday morning', () => {
    expect(state(fridayNight, '2026-12-04T21:59:59Z')).toEqual({ open: false, opensAt: '2026-12-04T22:00:00.000Z' });
    expect(state(fridayNight, '2026-12-04T23:00:00Z')).toEqual({ open: true, closesAt: '2026-12-05T04:00:00.000Z' });
    expect(state(fridayNight, '2026-12-05T03:00:00Z')).toEqual({ open: true, closesAt: '2026-12-05T04:00:00.000Z' });
  });

  it('is closed early on Friday (Thursday is no window day) and on Saturday evening', () => {
    expect(state(fridayNight, '2026-12-04T03:00:00Z')).toEqual({ open: false, opensAt: '2026-12-04T22:00:00.000Z' });
    expect(state(fridayNight, '2026-12-05T22:30:00Z')).toEqual({ open: false, opensAt: '2026-12-11T22:00:00.000Z' });
  });

  it('to 00:00 closes at midnight', () => {
    const evening = utc({ from: '22:00', to: '00:00' });
    expect(state(evening, '2026-12-07T23:59:59Z')).toEqual({ open: true, closesAt: '2026-12-08T00:00:00.000Z' });
    expect(state(evening, '2026-12-08T00:00:00Z')).toEqual({ open: false, opensAt: '2026-12-08T22:00:00.000Z' });
  });
});

describe('time zones', () => {
  const weekdays = { days: ['mon-fri'], from: '02:00', to: '04:00' };

  it('is wall time in the window`s zone: Europe/Berlin opens at 01:00Z in winter', () => {
    const window = { ...weekdays, timezone: 'Europe/Berlin' };
    expect(state(window, '2026-12-06T12:00:00Z')).toEqual({ open: false, opensAt: '2026-12-07T01:00:00.000Z' });
    expect(state(window, '2026-12-07T01:00:00Z')).toEqual({ open: true, closesAt: '2026-12-07T03:00:00.000Z' });
    expect(state(window, '2026-12-07T03:00:00Z')).toEqual({ open: false, opensAt: '2026-12-08T01:00:00.000Z' });
  });

  it('America/New_York: the weekday is New York`s, not UTC`s', () => {
    const window = { ...weekdays, timezone: 'America/New_York' };
    // Saturday 02:30Z is still Friday 21:30 in New York, and Monday 07:30Z is Monday 02:30 there.
    expect(state(window, '2026-12-05T02:30:00Z')).toEqual({ open: false, opensAt: '2026-12-07T07:00:00.000Z' });
    expect(state(window, '2026-12-07T07:30:00Z')).toEqual({ open: true, closesAt: '2026-12-07T09:00:00.000Z' });
    expect(state({ ...weekdays, timezone: 'Europe/Berlin' }, '2026-12-07T07:30:00Z')).toMatchObject({ open: false });
  });

  it('a zone passed in wins over none in the window', () => {
    expect(state({ from: '02:00', to: '04:00' }, '2026-12-07T01:30:00Z', 'Europe/Berlin')).toEqual({
      open: true,
      closesAt: '2026-12-07T03:00:00.000Z',
    });
  });

  describe('without a zone: the device`s own (its TZ)', () => {
    const saved = process.env.TZ;
    afterEach(() => {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    });

    it('follows TZ, and names it in the description', () => {
      process.env.TZ = 'America/New_York';
      expect(localTimeZone()).toBe('America/New_York');
      const window = { days: ['mon-fri'], from: '02:00', to: '04:00' };
      expect(state(window, '2026-12-07T07:30:00Z')).toEqual({ open: true, closesAt: '2026-12-07T09:00:00.000Z' });
      expect(describeWindow(window)).toBe('mon-fri 02:00–04:00 America/New_York');

      process.env.TZ = 'UTC';
      expect(state(window, '2026-12-07T07:30:00Z')).toEqual({ open: false, opensAt: '2026-12-08T02:00:00.000Z' });
      expect(describeWindow(window)).toBe('mon-fri 02:00–04:00 UTC');
    });
  });
});

describe('daylight-saving changes', () => {
  it('the night clocks go forward: a window at 02:30 (a time that night skips) opens at the change, 03:00 CEST', () => {
    const window = berlin({ from: '02:30', to: '04:00' });
    expect(state(window, '2026-03-28T12:00:00Z')).toEqual({ open: false, opensAt: '2026-03-29T01:00:00.000Z' });
    expect(state(window, '2026-03-29T00:30:00Z')).toEqual({ open: false, opensAt: '2026-03-29T01:00:00.000Z' });
    expect(state(window, '2026-03-29T00:59:59Z')).toEqual({ open: false, opensAt: '2026-03-29T01:00:00.000Z' });
    expect(state(window, '2026-03-29T01:00:00Z')).toEqual({ open: true, closesAt: '2026-03-29T02:00:00.000Z' });
    // The next night is summer time: 02:30 CEST is 00:30Z.
    expect(state(window, '2026-03-29T02:00:00Z')).toEqual({ open: false, opensAt: '2026-03-30T00:30:00.000Z' });
  });

  it('a window ending at a skipped time closes at the change', () => {
    expect(state(berlin({ from: '01:00', to: '02:30' }), '2026-03-29T00:30:00Z')).toEqual({
      open: true,
      closesAt: '2026-03-29T01:00:00.000Z',
    });
  });

  it('opensAt across a change keeps the wall time: 02:00 stays 02:00', () => {
    const weekdays = berlin({ days: ['mon-fri'], from: '02:00', to: '04:00' });
    // Friday in winter time, the next window on Monday in summer time: 02:00 CEST, not 02:00 CET.
    expect(state(weekdays, '2026-03-27T12:00:00Z')).toEqual({ open: false, opensAt: '2026-03-30T00:00:00.000Z' });
    // And back: Friday in summer time, Monday 02:00 CET.
    expect(state(weekdays, '2026-10-23T12:00:00Z')).toEqual({ open: false, opensAt: '2026-10-26T01:00:00.000Z' });
    const newYork = { days: ['mon-fri'], from: '01:00', to: '03:00', timezone: 'America/New_York' };
    expect(state(newYork, '2026-03-06T12:00:00Z')).toEqual({ open: false, opensAt: '2026-03-09T05:00:00.000Z' });
  });

  it('closesAt across a change keeps the wall time', () => {
    // Saturday 22:00 CET to Sunday 04:00 CEST: six hours on the wall, five in fact.
    expect(state(berlin({ from: '22:00', to: '04:00' }), '2026-03-28T21:00:00Z')).toEqual({
      open: true,
      closesAt: '2026-03-29T02:00:00.000Z',
    });
  });

  it('the night clocks go back: a window within the repeated hour is open both times it comes', () => {
    const window = berlin({ from: '02:00', to: '02:45' });
    expect(state(window, '2026-10-25T00:10:00Z')).toEqual({ open: true, closesAt: '2026-10-25T00:45:00.000Z' });
    expect(state(window, '2026-10-25T00:50:00Z')).toEqual({ open: false, opensAt: '2026-10-25T01:00:00.000Z' });
    expect(state(window, '2026-10-25T01:10:00Z')).toEqual({ open: true, closesAt: '2026-10-25T01:45:00.000Z' });
    expect(state(window, '2026-10-25T01:45:00Z')).toEqual({ open: false, opensAt: '2026-10-26T01:00:00.000Z' });
  });

  it('the night clocks go back: a window from inside the repeated hour closes as the clock goes back, and opens again', () => {
    const window = berlin({ from: '02:30', to: '04:00' });
    expect(state(window, '2026-10-25T00:40:00Z')).toEqual({ open: true, closesAt: '2026-10-25T01:00:00.000Z' });
    expect(state(window, '2026-10-25T01:00:00Z')).toEqual({ open: false, opensAt: '2026-10-25T01:30:00.000Z' });
    expect(state(window, '2026-10-25T01:30:00Z')).toEqual({ open: true, closesAt: '2026-10-25T03:00:00.000Z' });
  });

  it('through a whole year, the instant given is always ahead, and the window is in the state it said until then', () => {
    const windows: UpdateWindow[] = [
      berlin({ from: '02:30', to: '04:00' }),
      berlin({ days: ['sun'], from: '02:00', to: '02:45' }),
      berlin({ days: ['sat-mon'], from: '22:00', to: '02:30' }),
      { from: '01:30', to: '02:15:30', timezone: 'America/New_York' },
      { days: ['sat', 'sun'], from: '23:30', to: '00:30', timezone: 'America/Santiago' },
      { from: '00:00', to: '01:00', timezone: 'Australia/Lord_Howe' },
      utc({ days: ['wed'], from: '12:00', to: '12:00:01' }),
    ];
    // Every 5 h 13 min 7 s through 2026 (every time of day, on every day of the
    // week), and every 7 min 13 s from 8 hours before each of the zone's changes to 8 hours after.
    const instants = (zone: string): number[] => {
      const start = Date.parse('2026-01-01T00:00:00Z');
      const end = Date.parse('2027-01-01T00:00:00Z');
      const all: number[] = [];
      for (let t = start; t < end; t += 18_787_000) all.push(t);
      const format = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' });
      const offset = (t: number) => format.format(t).split('GMT')[1];
      for (let t = start; t < end; t += 3_600_000) {
        if (offset(t) === offset(t + 3_600_000)) continue;
        for (let u = t - 8 * 3_600_000; u < t + 8 * 3_600_000; u += 433_000) all.push(u);
      }
      return all;
    };
    const problems: string[] = [];
    for (const window of windows) {
      for (const t of instants(window.timezone ?? 'UTC')) {
        const now = new Date(t);
        const s = windowState(window, now);
        const next = s.open ? s.closesAt : s.opensAt;
        if (!next || next.getTime() <= t) {
          problems.push(`${describeWindow(window)} at ${now.toISOString()}: ${JSON.stringify(s)}`);
          continue;
        }
        const justBefore = windowState(window, new Date(next.getTime() - 1000)).open;
        const at = windowState(window, next).open;
        if (justBefore !== s.open || at === s.open) {
          problems.push(`${describeWindow(window)} at ${now.toISOString()}: said ${JSON.stringify(s)}, but ${justBefore} then ${at}`);
        }
      }
    }
    expect(problems.slice(0, 5)).toEqual([]);
  });
});

describe('describeWindow', () => {
  it('names the days, the times and the zone', () => {
    expect(describeWindow(berlin({ days: ['mon-fri'], from: '02:00', to: '04:00' }))).toBe('mon-fri 02:00–04:00 Europe/Berlin');
    expect(describeWindow(utc({ days: ['sat', 'sun'], from: '22:00', to: '04:00:30' }))).toBe('sat,sun 22:00–04:00:30 UTC');
    expect(describeWindow(utc({ from: '22:00', to: '04:00' }))).toBe('22:00–04:00 UTC');
  });
});

describe('windowIssues', () => {
  it('refuses an unknown zone, naming the fix', () => {
    expect(windowIssues({ from: '02:00', to: '04:00', timezone: 'Europe/Berlln' }, 'spec.update.window')).toEqual([
      {
        path: 'spec.update.window.timezone',
        message: 'unknown time zone "Europe/Berlln": use an IANA name such as Europe/Berlin or UTC',
      },
    ]);
  });

  it('refuses from == to (an empty window), also written once with seconds', () => {
    const empty = [{ path: 'spec.window.to', message: 'must differ from "from": the window would be empty' }];
    expect(windowIssues({ from: '02:00', to: '02:00' }, 'spec.window')).toEqual(empty);
    expect(windowIssues({ from: '02:00', to: '02:00:00' }, 'spec.window')).toEqual(empty);
  });

  it('accepts a window past midnight, seconds and a known zone', () => {
    expect(windowIssues({ days: ['sat-mon'], from: '22:00:30', to: '04:00', timezone: 'America/New_York' }, 'w')).toEqual([]);
  });

  it('reaches an operator applying an app spec', () => {
    const spec = {
      name: 'shop',
      scheduling: { selectors: {} },
      spec: {
        containers: [{ name: 'web', image: 'reg.local/web:1' }],
        update: { window: { from: '02:00', to: '04:00', timezone: 'Mars/Olympus' } },
      },
    };
    expect(validateAppSpec(spec)).toEqual({
      ok: false,
      issues: [
        { path: 'spec.update.window.timezone', message: 'unknown time zone "Mars/Olympus": use an IANA name such as Europe/Berlin or UTC' },
      ],
    });
  });
});
