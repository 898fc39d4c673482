/**
 * A device's metric samples turned into the charts its Metrics tab draws:
 * one x axis (seconds, as uPlot wants them) and a few named lines per chart.
 * Pure, so what each chart shows is decided in one place.
 *
 * Network traffic arrives as counters since boot; a chart shows the rate
 * between two samples, and nothing (a gap) across a counter reset (a reboot).
 */
import type { MetricsSample } from '../../../../shared/telemetry-api.js';

export type ChartUnit = 'percent' | 'bytes' | 'bytesPerSecond' | 'celsius';

export interface ChartSeries {
  label: string;
  values: (number | null)[];
}

export interface ChartData {
  /** `cpu`, `memory`, `disk`, `network`, `temperature`, `container:APP/CONTAINER`. */
  name: string;
  title: string;
  unit: ChartUnit;
  /** Sample times in seconds since the epoch. */
  xs: number[];
  series: ChartSeries[];
}

export function hostCharts(samples: readonly MetricsSample[]): ChartData[] {
  const xs = samples.map((s) => Date.parse(s.ts) / 1000);
  const diskNames = [...new Set(samples.flatMap((s) => s.host.disks.map((d) => d.name)))];
  return [
    { name: 'cpu', title: 'CPU', unit: 'percent', xs, series: [{ label: 'CPU', values: samples.map((s) => s.host.cpuPercent) }] },
    {
      name: 'memory',
      title: 'Memory',
      unit: 'bytes',
      xs,
      series: [
        { label: 'Used', values: samples.map((s) => s.host.memUsedBytes) },
        { label: 'Total', values: samples.map((s) => s.host.memTotalBytes) },
      ],
    },
    {
      name: 'disk',
      title: 'Disk used',
      unit: 'percent',
      xs,
      series: diskNames.map((name) => ({
        label: name,
        values: samples.map((s) => {
          const disk = s.host.disks.find((d) => d.name === name);
          return disk && disk.totalBytes > 0 ? (disk.usedBytes / disk.totalBytes) * 100 : null;
        }),
      })),
    },
    {
      name: 'network',
      title: 'Network',
      unit: 'bytesPerSecond',
      xs,
      series: [
        {
          label: 'Received',
          values: rates(
            xs,
            samples.map((s) => s.host.netRxBytes),
          ),
        },
        {
          label: 'Sent',
          values: rates(
            xs,
            samples.map((s) => s.host.netTxBytes),
          ),
        },
      ],
    },
    {
      name: 'temperature',
      title: 'Temperature',
      unit: 'celsius',
      xs,
      series: [{ label: 'Hottest zone', values: samples.map((s) => s.host.temperatureC ?? null) }],
    },
  ];
}

/** One CPU and one memory chart per container seen in the samples, in the order they first appear. */
export function containerCharts(samples: readonly MetricsSample[]): ChartData[] {
  const xs = samples.map((s) => Date.parse(s.ts) / 1000);
  const keys = [...new Set(samples.flatMap((s) => s.containers.map((c) => `${c.app}/${c.container}`)))];
  return keys.map((key) => {
    const of = (s: MetricsSample) => s.containers.find((c) => `${c.app}/${c.container}` === key);
    return {
      name: `container:${key}`,
      title: key,
      unit: 'percent' as const,
      xs,
      series: [
        { label: 'CPU', values: samples.map((s) => of(s)?.cpuPercent ?? null) },
        {
          // A share, so both lines fit one axis: of the container's limit, or of the host's memory when it has none.
          label: 'Memory',
          values: samples.map((s) => {
            const c = of(s);
            const of100 = c?.memLimitBytes ?? s.host.memTotalBytes;
            return c && of100 > 0 ? (c.memBytes / of100) * 100 : null;
          }),
        },
      ],
    };
  });
}

/** Bytes per second between neighbouring counters; null first, and where a counter went backwards or time did not move. */
export function rates(xs: readonly number[], counters: readonly number[]): (number | null)[] {
  return counters.map((value, i) => {
    if (i === 0) return null;
    const dt = xs[i]! - xs[i - 1]!;
    const dv = value - counters[i - 1]!;
    return dt > 0 && dv >= 0 ? dv / dt : null;
  });
}

/**
 * `held` followed by the samples of `incoming` newer than its last one, cut
 * to the newest `max` (a day of 10 s samples is 8,640).
 */
export function appendSamples(held: readonly MetricsSample[], incoming: readonly MetricsSample[], max = 20_000): MetricsSample[] {
  const lastMs = held.length > 0 ? Date.parse(held.at(-1)!.ts) : Number.NEGATIVE_INFINITY;
  const fresh = incoming.filter((s) => Date.parse(s.ts) > lastMs);
  if (fresh.length === 0) return held as MetricsSample[];
  const all = held.concat(fresh);
  return all.length > max ? all.slice(all.length - max) : all;
}
