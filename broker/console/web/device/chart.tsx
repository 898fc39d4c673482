/**
 * One time-series chart, drawn by uPlot (loaded on first use, so the fleet
 * page never downloads it). The figure has a fixed height before and after
 * uPlot arrives, so nothing below it moves; its width follows the page.
 * `data-points` says how many samples the chart draws, for people reading
 * the markup and for the browser tests.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { formatBytes } from '../format.js';
import type { ChartData, ChartUnit } from './metric-series.js';

const PLOT_HEIGHT = 180;
const COLOURS = ['#1f5fbf', '#d9480f', '#2f9e44', '#ae3ec9', '#0c8599', '#e67700'];

let uplotModule: Promise<typeof uPlot> | undefined;
function loadUplot(): Promise<typeof uPlot> {
  uplotModule ??= import('uplot').then((m) => m.default);
  return uplotModule;
}

export function formatValue(unit: ChartUnit, value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  switch (unit) {
    case 'percent':
      return `${value.toFixed(value < 10 ? 1 : 0)}%`;
    case 'bytes':
      return formatBytes(value);
    case 'bytesPerSecond':
      return `${formatBytes(value)}/s`;
    case 'celsius':
      return `${value.toFixed(1)} °C`;
  }
}

export function Chart({ chart }: { chart: ChartData }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [failed, setFailed] = useState<string | undefined>();
  const shape = `${chart.unit}:${chart.series.map((s) => s.label).join('|')}`;
  const data = [chart.xs, ...chart.series.map((s) => s.values)] as uPlot.AlignedData;
  const latest = useRef(data);
  latest.current = data;

  // A new plot only when the lines themselves change (a disk appears); new samples go through setData.
  useEffect(() => {
    let cancelled = false;
    let observer: ResizeObserver | undefined;
    loadUplot().then(
      (UPlot) => {
        const target = box.current;
        if (cancelled || !target) return;
        const created = new UPlot(options(chart, target.clientWidth), latest.current, target);
        plot.current = created;
        observer = new ResizeObserver(() => created.setSize({ width: Math.max(200, target.clientWidth), height: PLOT_HEIGHT }));
        observer.observe(target);
      },
      (error: Error) => !cancelled && setFailed(`The chart library did not load: ${error.message}`),
    );
    return () => {
      cancelled = true;
      observer?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  const hasData = chart.series.some((s) => lastValue(s.values) !== null);
  const last = chart.series.map((s) => `${s.label} ${formatValue(chart.unit, lastValue(s.values))}`).join(', ');
  return (
    <figure class="chart card" data-chart={chart.name} data-points={chart.xs.length}>
      <figcaption>
        <strong>{chart.title}</strong>{' '}
        <span class="help">{chart.xs.length === 0 ? 'no samples' : hasData ? last : 'not measured on this device'}</span>
      </figcaption>
      {failed ? <p class="error">{failed}</p> : <div class="plot" ref={box} style={{ height: `${PLOT_HEIGHT + 34}px` }} />}
    </figure>
  );
}

function lastValue(values: readonly (number | null)[]): number | null {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i]!;
  return null;
}

function options(chart: ChartData, width: number): uPlot.Options {
  return {
    width: Math.max(200, width),
    height: PLOT_HEIGHT,
    legend: { show: true, live: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: chart.unit === 'percent' ? { range: [0, 100] } : { auto: true } },
    axes: [
      { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' } },
      {
        stroke: 'currentColor',
        grid: { stroke: 'rgba(128,128,128,0.2)' },
        size: 70,
        values: (_u, splits) => splits.map((v) => formatValue(chart.unit, v)),
      },
    ],
    series: [
      {},
      ...chart.series.map((s, i) => ({
        label: s.label,
        stroke: COLOURS[i % COLOURS.length]!,
        width: 1.5,
        spanGaps: false,
        value: (_u: uPlot, v: number | null) => formatValue(chart.unit, v),
      })),
    ],
  };
}
