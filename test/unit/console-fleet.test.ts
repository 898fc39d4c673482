import { describe, expect, it } from 'vitest';
import { eventTone, eventTypes, filterEvents, formatEventTime, mergeEvents } from '../../broker/console/web/fleet/event-list.js';
import { fleetFilter, formatSortOrder, parseSortOrder, sortFleet } from '../../broker/console/web/fleet/fleet-order.js';
import { applyFleetEvent, type FleetRows } from '../../broker/console/web/fleet/fleet-rows.js';
import { RENDER_ALL_UP_TO, ROW_HEIGHT, rowRange } from '../../broker/console/web/fleet/row-window.js';
import { runEach } from '../../broker/console/web/fleet/run-each.js';
import { parseLabelEdit } from '../../broker/console/web/label-edit.js';
import { parseRoute, routeQuery } from '../../broker/console/web/router.js';
import type { FleetRow } from '../../shared/api/fleet.js';
import type { EventRecord } from '../../shared/telemetry-api.js';

function row(id: string, extra: Partial<FleetRow> = {}): FleetRow {
  return {
    id,
    online: true,
    lastSeen: '2026-01-01T00:00:00.000Z',
    labels: {},
    agentVersion: '1.0.0',
    hostname: `${id}.local`,
    arch: 'arm64',
    apps: { desired: 1, running: 1, failing: 0 },
    metrics: null,
    history: { cpu: [], mem: [], disk: [] },
    ...extra,
  };
}

const fleetEvent = (items: FleetRow[]) => ({ event: 'fleet', data: JSON.stringify({ items }) });
const changesEvent = (items: FleetRow[], removed: string[] = []) => ({ event: 'fleet-changes', data: JSON.stringify({ items, removed }) });
const ids = (rows: Iterable<FleetRow>) => [...rows].map((r) => r.id);

describe('the fleet stream applied to the table', () => {
  it('replaces everything on fleet, merges changes by id and drops removed ids', () => {
    let rows: FleetRows = new Map([['gone', row('gone')]]);
    rows = applyFleetEvent(rows, fleetEvent([row('a'), row('b'), row('c')]));
    expect(ids(rows.values())).toEqual(['a', 'b', 'c']);
    const before = rows;
    rows = applyFleetEvent(rows, changesEvent([row('b', { online: false }), row('d')], ['c']));
    expect(ids(rows.values())).toEqual(['a', 'b', 'd']);
    expect(rows.get('b')?.online).toBe(false);
    // Unchanged rows keep their identity (the table skips them); the old map is left as it was.
    expect(rows.get('a')).toBe(before.get('a'));
    expect(ids(before.values())).toEqual(['a', 'b', 'c']);
  });

  it('leaves the table as it is for other events and unreadable data', () => {
    const rows: FleetRows = new Map([['a', row('a')]]);
    expect(applyFleetEvent(rows, { event: 'message', data: '{}' })).toBe(rows);
    expect(applyFleetEvent(rows, { event: 'fleet-changes', data: '{not json' })).toBe(rows);
  });
});

describe('filtering and sorting the fleet', () => {
  const fleet = [
    row('roof-1', { labels: { site: 'roof', gpu: 'yes' }, metrics: { ts: 'x', cpuPercent: 50 } }),
    row('roof-2', { labels: { site: 'roof' }, online: false, hostname: 'gateway', metrics: { ts: 'x', cpuPercent: 10 } }),
    row('yard-1', { labels: { site: 'yard' }, metrics: { ts: 'x', cpuPercent: 50 } }),
    row('bare', { metrics: null, revokedAt: '2026-01-01T00:00:00.000Z' }),
  ];

  it('filters by label selector and by words found in the id, hostname or labels', () => {
    const shown = (selector: string, search: string) => ids(fleet.filter(fleetFilter(selector, search).matches));
    expect(shown('site=roof', '')).toEqual(['roof-1', 'roof-2']);
    expect(shown('site in (roof, yard), !gpu', '')).toEqual(['roof-2', 'yard-1']);
    expect(shown('', 'GATEWAY')).toEqual(['roof-2']);
    expect(shown('', 'gpu=yes')).toEqual(['roof-1']);
    expect(shown('site=roof', 'roof 2')).toEqual(['roof-2']);
  });

  it('reports a bad selector and then filters by the search alone', () => {
    const filter = fleetFilter('site in (roof', 'yard');
    expect(filter.selectorError).toBe('expected "," or ")" in the list of "site in", found the end (column 14)');
    expect(ids(fleet.filter(filter.matches))).toEqual(['yard-1']);
    expect(fleetFilter('site=roof', '').selectorError).toBeUndefined();
  });

  it('sorts with ties in id order and devices without the value last, either way', () => {
    expect(ids(sortFleet(fleet, { key: 'cpu', descending: true }))).toEqual(['roof-1', 'yard-1', 'roof-2', 'bare']);
    expect(ids(sortFleet(fleet, { key: 'cpu', descending: false }))).toEqual(['roof-2', 'roof-1', 'yard-1', 'bare']);
    expect(ids(sortFleet(fleet, { key: 'status', descending: false }))).toEqual(['roof-1', 'yard-1', 'roof-2', 'bare']);
    expect(ids(sortFleet(fleet, { key: 'id', descending: true }))).toEqual(['yard-1', 'roof-2', 'roof-1', 'bare']);
  });

  it('keeps the order in the address as key or -key, and falls back to id', () => {
    expect(parseSortOrder('-cpu')).toEqual({ key: 'cpu', descending: true });
    expect(formatSortOrder(parseSortOrder('temperature'))).toBe('temperature');
    expect(parseSortOrder('-bogus')).toEqual({ key: 'id', descending: false });
    expect(parseSortOrder(null)).toEqual({ key: 'id', descending: false });
  });
});

describe('the bulk label form', () => {
  it('reads k=v lists and key lists', () => {
    expect(parseLabelEdit(' site=roof , example.com/zone=eu-1,gpu=', 'old, old ,tier')).toEqual({
      ok: true,
      edit: { set: { site: 'roof', 'example.com/zone': 'eu-1', gpu: '' }, remove: ['old', 'tier'] },
    });
  });

  it('refuses bad input at its field before anything is sent', () => {
    expect(parseLabelEdit('site', '')).toEqual({ ok: false, setError: '"site" is not key=value' });
    expect(parseLabelEdit('site=roof top', '')).toEqual({ ok: false, setError: 'invalid label value "roof top" for "site"' });
    expect(parseLabelEdit('bad key=1', '')).toEqual({ ok: false, setError: 'invalid label key "bad key"' });
    expect(parseLabelEdit('a=1, a=2', '')).toEqual({ ok: false, setError: '"a" is set twice' });
    expect(parseLabelEdit('', 'ok, no way')).toEqual({ ok: false, removeError: 'invalid label key "no way"' });
    expect(parseLabelEdit('a=1', 'a')).toEqual({ ok: false, removeError: '"a" is both set and removed' });
    expect(parseLabelEdit(' ', ' , ')).toEqual({ ok: false, setError: 'nothing to change: set or remove at least one label' });
  });
});

describe('runEach', () => {
  it('runs every item, never more than the limit at once, and collects failures', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    const progress: number[] = [];
    const result = await runEach(
      Array.from({ length: 20 }, (_, i) => i),
      4,
      async (i) => {
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 1 + (i % 3)));
        running--;
        seen.push(i);
        if (i % 7 === 0) throw new Error(`no ${i}`);
      },
      (p) => progress.push(p.done),
    );
    expect(most).toBe(4);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(result.done).toBe(20);
    expect(result.failures.map((f) => [f.item, (f.error as Error).message])).toEqual(
      expect.arrayContaining([
        [0, 'no 0'],
        [7, 'no 7'],
        [14, 'no 14'],
      ]),
    );
    expect(result.failures).toHaveLength(3);
    expect(progress).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});

describe('rowRange', () => {
  it('renders every row of a short table', () => {
    expect(rowRange(RENDER_ALL_UP_TO, -10_000, 800)).toEqual({ first: 0, end: RENDER_ALL_UP_TO });
  });

  it('renders the rows in view and a margin on each side of a long one', () => {
    const top = rowRange(1000, 250, 800);
    expect(top.first).toBe(0);
    expect(top.end).toBeGreaterThanOrEqual(Math.ceil(800 / ROW_HEIGHT));
    expect(top.end).toBeLessThan(60);
    const middle = rowRange(1000, -500 * ROW_HEIGHT, 800);
    expect(middle.first).toBeLessThan(500);
    expect(middle.first).toBeGreaterThan(470);
    expect(middle.end).toBeGreaterThan(500 + Math.ceil(800 / ROW_HEIGHT));
    expect(middle.end).toBeLessThan(540);
    const bottom = rowRange(1000, -2000 * ROW_HEIGHT, 800);
    expect(bottom.end).toBe(1000);
    expect(bottom.first).toBeLessThan(1000 - Math.ceil(800 / ROW_HEIGHT));
  });
});

describe('the events page list', () => {
  const ev = (id: number, device = 'd1', type = 'started'): EventRecord => ({ id, device, seq: id, ts: 'x', type, message: `m${id}` });

  it('keeps events newest first, each once, at most the bound', () => {
    let events = mergeEvents([], [ev(1), ev(3), ev(2)]);
    events = mergeEvents(events, [ev(3), ev(4)]);
    expect(events.map((e) => e.id)).toEqual([4, 3, 2, 1]);
    expect(mergeEvents(events, [ev(5), ev(6)], 3).map((e) => e.id)).toEqual([6, 5, 4]);
  });

  it('filters by part of the device id and by exact type', () => {
    const events = [ev(3, 'gw-roof', 'health-failed'), ev(2, 'gw-yard', 'started'), ev(1, 'pump', 'health-failed')];
    expect(filterEvents(events, { device: 'GW', type: '' }).map((e) => e.id)).toEqual([3, 2]);
    expect(filterEvents(events, { device: '', type: 'health-failed' }).map((e) => e.id)).toEqual([3, 1]);
    expect(eventTypes(events)).toEqual(['health-failed', 'started']);
  });

  it('colours failures and work under way, and leaves done work plain', () => {
    expect(['health-failed', 'pull-failed', 'device-id-clash', 'rolled-back'].map(eventTone)).toEqual(['bad', 'bad', 'bad', 'bad']);
    expect(['pull-started', 'restarting'].map(eventTone)).toEqual(['busy', 'busy']);
    expect(['pulled', 'created', 'started', 'removed'].map(eventTone)).toEqual(['plain', 'plain', 'plain', 'plain']);
  });

  it("writes today's times without the date and older ones with it", () => {
    const now = new Date(2026, 11, 5, 14, 30, 0);
    const today = new Date(2026, 11, 5, 9, 5, 7);
    const yesterday = new Date(2026, 11, 4, 9, 5, 7);
    expect(formatEventTime(today.toISOString(), now)).toBe(today.toLocaleTimeString(undefined, { hour12: false }));
    expect(formatEventTime(yesterday.toISOString(), now)).toBe(yesterday.toLocaleString(undefined, { hour12: false }));
    expect(formatEventTime('not a time', now)).toBe('not a time');
  });
});

describe('filters in the address', () => {
  it('routes by the path alone and reads the filters after ?', () => {
    const hash = `#/?l=${encodeURIComponent('site in (roof, yard)')}&q=gw&s=-cpu`;
    expect(parseRoute(hash)).toEqual({ view: 'fleet' });
    expect(Object.fromEntries(routeQuery(hash))).toEqual({ l: 'site in (roof, yard)', q: 'gw', s: '-cpu' });
    expect(parseRoute('#/events?device=gw&type=health-failed')).toEqual({ view: 'events' });
    expect(parseRoute('#/devices/gw-1/logs?x=1')).toEqual({ view: 'device', id: 'gw-1', tab: 'logs' });
    expect([...routeQuery('#/devices/gw-1')]).toEqual([]);
  });
});
