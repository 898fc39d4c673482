/**
 * What the console's device page makes of the hub's answers: the log lines
 * it holds as the backlog and the live stream overlap, what a search keeps
 * and highlights, what the `Since` box sends, the charts drawn from metric
 * samples (rates from counters, gaps across a reboot), and label edits.
 */
import { describe, expect, it } from 'vitest';
import { appendLines, filterLines, sinceParam, splitMatches } from '../../broker/console/web/device/log-buffer.js';
import { appendSamples, containerCharts, hostCharts, rates } from '../../broker/console/web/device/metric-series.js';
import { parseLabelEdit } from '../../broker/console/web/label-edit.js';
import type { LogRecord, MetricsSample } from '../../shared/telemetry-api.js';

const line = (id: number, text = `line ${id}`, stream: LogRecord['stream'] = 'stdout'): LogRecord => ({
  id,
  device: 'd1',
  app: 'web',
  container: 'main',
  stream,
  ts: '2026-01-01T00:00:00Z',
  line: text,
});

describe('the log lines a device page holds', () => {
  it('keeps each stored line once, in order, when the live stream repeats the backlog', () => {
    const backlog = appendLines([], [line(1), line(2), line(3)]);
    const after = appendLines(backlog, [line(2), line(3), line(4), line(5)]);
    expect(after.map((l) => l.id)).toEqual([1, 2, 3, 4, 5]);
    expect(appendLines(after, [line(5)])).toBe(after);
  });

  it('drops the oldest lines beyond its bound', () => {
    const many = Array.from({ length: 12 }, (_, i) => line(i + 1));
    expect(appendLines([], many, 5).map((l) => l.id)).toEqual([8, 9, 10, 11, 12]);
    expect(appendLines(appendLines([], many.slice(0, 4), 5), many.slice(4), 5).map((l) => l.id)).toEqual([8, 9, 10, 11, 12]);
  });

  it('filters by a case-insensitive search and cuts a line around each match', () => {
    const lines = [line(1, 'GET /health 200'), line(2, 'error: disk full'), line(3, 'Health check passed')];
    expect(filterLines(lines, 'health').map((l) => l.id)).toEqual([1, 3]);
    expect(filterLines(lines, '  ')).toBe(lines);
    expect(splitMatches('Health and health', 'HEALTH')).toEqual(['', 'Health', ' and ', 'health', '']);
    expect(splitMatches('no match here', 'xyz')).toEqual(['no match here']);
  });

  it('sends durations as they are, dates as RFC 3339, and refuses anything else', () => {
    expect(sinceParam('')).toBe('');
    expect(sinceParam(' 10m ')).toBe('10m');
    expect(sinceParam('2d')).toBe('2d');
    expect(sinceParam('2026-01-31T08:00:00Z')).toBe('2026-01-31T08:00:00.000Z');
    expect(sinceParam('10 minutes')).toBeUndefined();
    expect(sinceParam('2026')).toBeUndefined();
  });
});

const sample = (
  seconds: number,
  rx: number,
  extra: Partial<MetricsSample['host']> = {},
  containers: MetricsSample['containers'] = [],
): MetricsSample => ({
  device: 'd1',
  seq: seconds,
  ts: new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString(),
  host: {
    cpuPercent: seconds,
    cpuCount: 4,
    load1: 0,
    load5: 0,
    load15: 0,
    memTotalBytes: 1000,
    memAvailableBytes: 600,
    memUsedBytes: 400,
    disks: [{ name: 'root', path: '/', usedBytes: 25, freeBytes: 75, totalBytes: 100 }],
    netRxBytes: rx,
    netTxBytes: rx * 2,
    uptimeSeconds: 100,
    ...extra,
  },
  containers,
});

describe('the charts of a device’s metrics', () => {
  it('draws each host measure against the sample times', () => {
    const charts = hostCharts([sample(0, 0), sample(10, 1000, { temperatureC: 51.5 })]);
    expect(charts.map((c) => c.name)).toEqual(['cpu', 'memory', 'disk', 'network', 'temperature']);
    const byName = Object.fromEntries(charts.map((c) => [c.name, c]));
    expect(byName.cpu!.xs).toEqual([Date.UTC(2026, 0, 1) / 1000, Date.UTC(2026, 0, 1) / 1000 + 10]);
    expect(byName.cpu!.series[0]!.values).toEqual([0, 10]);
    expect(byName.disk!.series).toEqual([{ label: 'root', values: [25, 25] }]);
    expect(byName.network!.series.map((s) => s.values)).toEqual([
      [null, 100],
      [null, 200],
    ]);
    expect(byName.temperature!.series[0]!.values).toEqual([null, 51.5]);
  });

  it('leaves a gap where a counter went back (a reboot) or time stood still', () => {
    expect(rates([0, 10, 20, 20, 30], [0, 500, 100, 200, 300])).toEqual([null, 50, null, null, 10]);
  });

  it('draws one chart per container seen, memory as a share of its limit or else of the host', () => {
    const container = (memLimitBytes?: number) => ({
      app: 'web',
      container: 'main',
      id: 'c1',
      cpuPercent: 3,
      memBytes: 100,
      ...(memLimitBytes ? { memLimitBytes } : {}),
      netRxBytes: 0,
      netTxBytes: 0,
      blkReadBytes: 0,
      blkWriteBytes: 0,
      pids: 1,
      restartCount: 0,
    });
    const charts = containerCharts([sample(0, 0, {}, [container(200)]), sample(10, 0), sample(20, 0, {}, [container()])]);
    expect(charts).toHaveLength(1);
    expect(charts[0]!.name).toBe('container:web/main');
    expect(charts[0]!.series.map((s) => s.values)).toEqual([
      [3, null, 3],
      [50, null, 10],
    ]);
  });

  it('appends only samples newer than the last one held, within its bound', () => {
    const held = appendSamples([], [sample(0, 0), sample(10, 0)]);
    const grown = appendSamples(held, [sample(10, 0), sample(20, 0)]);
    expect(grown.map((s) => s.seq)).toEqual([0, 10, 20]);
    expect(appendSamples(grown, [sample(20, 0)])).toBe(grown);
    expect(appendSamples(grown, [sample(30, 0), sample(40, 0)], 3).map((s) => s.seq)).toEqual([20, 30, 40]);
  });
});

describe('label edits on a device page', () => {
  it('reads k=v lists and key lists, and names an item that is not k=v', () => {
    expect(parseLabelEdit('site=roof, tier = edge ,empty=', '')).toEqual({
      ok: true,
      edit: { set: { site: 'roof', tier: 'edge', empty: '' }, remove: [] },
    });
    expect(parseLabelEdit('', ' site, ,tier ')).toEqual({ ok: true, edit: { set: {}, remove: ['site', 'tier'] } });
    expect(parseLabelEdit('site=roof, oops', '')).toEqual({ ok: false, setError: '"oops" is not key=value' });
  });
});
