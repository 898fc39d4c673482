/**
 * The fleet stream's pure parts and its feed over a stand-in device source:
 * app counts, sparkline rings, what counts as a change, a desired document
 * opened only when its revision moves, ticking only while followed, and the
 * console's encoding choice.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FleetFeed } from '../../broker/fleet/feed.js';
import { hostPercents, MetricsHistory } from '../../broker/fleet/history.js';
import { appCounts, fleetChanges } from '../../broker/fleet/rows.js';
import { chooseEncoding } from '../../broker/http/console.js';
import type { FleetDeviceRow } from '../../broker/store/devices.js';
import type { FleetChanges, FleetRow, MetricsSample } from '../../shared/index.js';
import { deviceState, metricsSample } from '../support/fixtures.js';

const gib = 1024 ** 3;

describe('appCounts', () => {
  it('counts desired apps, those running at the desired revision, and those failing', async () => {
    const desired = [
      { name: 'a', revision: 2 },
      { name: 'b', revision: 1 },
      { name: 'c', revision: 5 },
      { name: 'd', revision: 1 },
    ];
    const reported = [
      { name: 'a', revision: 2, phase: 'running' as const },
      // Still the old revision: not yet running what it is told to.
      { name: 'b', revision: 0, phase: 'running' as const },
      { name: 'c', revision: 5, phase: 'rolled-back' as const },
      // Reported but no longer desired: counts for nothing.
      { name: 'x', revision: 1, phase: 'failed' as const },
    ];
    expect(appCounts(desired, reported)).toEqual({ desired: 4, running: 1, failing: 1 });
    expect(appCounts([], reported)).toEqual({ desired: 0, running: 0, failing: 0 });
  });
});

describe('MetricsHistory', () => {
  it('keeps the newest samples up to its size, oldest first, with percents of memory and the root disk', async () => {
    const history = new MetricsHistory(3);
    for (let i = 1; i <= 5; i++) {
      const { host } = metricsSample(i);
      host.cpuPercent = i * 10;
      history.record('d', host);
    }
    expect(history.get('d')).toEqual({ cpu: [30, 40, 50], mem: [25, 25, 25], disk: [33.3, 33.3, 33.3], samples: 5 });
    expect(history.get('other')).toBeUndefined();
  });

  it('reads the disk named root, else the first; a zero total has no percent', async () => {
    const disks = [
      { name: 'docker', path: '/var/lib/docker', usedBytes: 1 * gib, freeBytes: 1 * gib, totalBytes: 2 * gib },
      { name: 'root', path: '/', usedBytes: 3 * gib, freeBytes: 1 * gib, totalBytes: 4 * gib },
    ];
    expect(hostPercents({ cpuPercent: 1.234, memUsedBytes: 1, memTotalBytes: 0, disks })).toEqual({ cpu: 1.2, disk: 75 });
    expect(hostPercents({ cpuPercent: 0, memUsedBytes: 1, memTotalBytes: 3, disks: [disks[0]!] })).toEqual({ cpu: 0, mem: 33.3, disk: 50 });
    expect(hostPercents({ cpuPercent: 0, memUsedBytes: 1, memTotalBytes: 3, disks: [] })).toEqual({ cpu: 0, mem: 33.3 });
  });
});

describe('fleetChanges', () => {
  it('names rows that are new or whose JSON differs, and ids that are gone', async () => {
    const row = (id: string, online: boolean) => ({ id, online }) as FleetRow;
    const entry = (r: FleetRow) => ({ row: r, json: JSON.stringify(r) });
    const before = new Map([
      ['a', entry(row('a', true))],
      ['b', entry(row('b', true))],
      ['c', entry(row('c', true))],
    ]);
    const after = new Map([
      ['a', entry(row('a', true))],
      ['b', entry(row('b', false))],
      ['d', entry(row('d', true))],
    ]);
    expect(fleetChanges(before, after)).toEqual({ items: [row('b', false), row('d', true)], removed: ['c'] });
    expect(fleetChanges(after, after)).toEqual({ items: [], removed: [] });
  });
});

/** A device table in memory, as DeviceStore.fleetRows would read it. */
function deviceSource() {
  const rows = new Map<string, FleetDeviceRow>();
  const desiredOpened: string[] = [];
  return {
    rows,
    desiredOpened,
    put(id: string, changes: Partial<FleetDeviceRow> = {}) {
      const state = deviceState(id, { apps: [{ name: 'thermo', revision: 1, phase: 'running', containers: [] }] });
      rows.set(id, {
        id,
        online: 1,
        last_seen: '2026-01-01T00:00:00.000Z',
        operator_labels: '{}',
        reported_labels: JSON.stringify(state.labels),
        state: JSON.stringify(state),
        desired_revision: 1,
        ...rows.get(id),
        ...changes,
      });
    },
    fleetRows: async () => [...rows.values()],
    async desiredApps(id: string) {
      desiredOpened.push(id);
      return [{ name: 'thermo', revision: 1 }];
    },
  };
}

describe('FleetFeed', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function feedOver(source: ReturnType<typeof deviceSource>, latest = new Map<string, MetricsSample>(), history = new MetricsHistory()) {
    return new FleetFeed({ devices: source, latest, history, logger: pino({ level: 'silent' }), tickMs: 1000 });
  }

  it('gives a follower every device, then once a tick only what changed, and opens a desired document only when its revision moves', async () => {
    vi.useFakeTimers();
    const source = deviceSource();
    source.put('a');
    source.put('b');
    const latest = new Map<string, MetricsSample>();
    const history = new MetricsHistory();
    const feed = feedOver(source, latest, history);
    const heard: FleetChanges[] = [];
    const { snapshot, stop } = await feed.follow((changes) => heard.push(changes));
    expect(snapshot.map((r) => [r.id, r.online, r.apps])).toEqual([
      ['a', true, { desired: 1, running: 1, failing: 0 }],
      ['b', true, { desired: 1, running: 1, failing: 0 }],
    ]);
    expect(source.desiredOpened).toEqual(['a', 'b']);

    await vi.advanceTimersByTimeAsync(3000);
    expect(heard).toEqual([]);

    source.put('b', { online: 0 });
    const sample = { device: 'a', ...metricsSample(1) };
    latest.set('a', sample);
    history.record('a', sample.host);
    await vi.advanceTimersByTimeAsync(1000);
    expect(heard).toHaveLength(1);
    expect(heard[0]!.items.map((r) => [r.id, r.online, r.history.cpu])).toEqual([
      ['a', true, [12.5]],
      ['b', false, []],
    ]);
    expect(source.desiredOpened).toEqual(['a', 'b']);

    source.put('a', { desired_revision: 2 });
    source.rows.delete('b');
    await vi.advanceTimersByTimeAsync(1000);
    // The revision moved but the apps did not: the document is opened, the row is unchanged.
    expect(source.desiredOpened).toEqual(['a', 'b', 'a']);
    expect(heard[1]).toEqual({ items: [], removed: ['b'] });
    stop();
    feed.close();
  });

  it('keeps streaming the fleet when one device’s desired document cannot be read', async () => {
    const source = deviceSource();
    source.put('a');
    source.put('b');
    const readable = source.desiredApps;
    source.desiredApps = async (id: string) => {
      if (id === 'b') throw new Error('cannot open');
      return readable(id);
    };
    const feed = feedOver(source);
    const { snapshot, stop } = await feed.follow(() => undefined);
    expect(snapshot.map((r) => [r.id, r.apps.desired])).toEqual([
      ['a', 1],
      ['b', 0],
    ]);
    stop();
    feed.close();
  });

  it('ticks only while someone follows, and reads the fleet afresh for the first follower after a pause', async () => {
    vi.useFakeTimers();
    const source = deviceSource();
    source.put('a');
    const feed = feedOver(source);
    const reads = vi.spyOn(source, 'fleetRows');
    const first = await feed.follow(() => undefined);
    const second = await feed.follow(() => undefined);
    expect(feed.followers).toBe(2);
    await vi.advanceTimersByTimeAsync(2000);
    expect(reads).toHaveBeenCalledTimes(3);
    first.stop();
    second.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(reads).toHaveBeenCalledTimes(3);

    source.put('a', { online: 0 });
    const again = await feed.follow(() => undefined);
    expect(again.snapshot[0]!.online).toBe(false);
    again.stop();
    feed.close();
  });
});

describe('chooseEncoding', () => {
  const both = ['identity', 'gzip', 'br'] as const;
  it('prefers brotli, then gzip, honours q=0 and *, and falls back to identity', async () => {
    expect(chooseEncoding('gzip, deflate, br', both)).toBe('br');
    expect(chooseEncoding('gzip', both)).toBe('gzip');
    expect(chooseEncoding('br;q=0, gzip;q=0.5', both)).toBe('gzip');
    expect(chooseEncoding('*', both)).toBe('br');
    expect(chooseEncoding('*, br;q=0', both)).toBe('gzip');
    expect(chooseEncoding(undefined, both)).toBe('identity');
    expect(chooseEncoding('br', ['identity'])).toBe('identity');
  });
});
