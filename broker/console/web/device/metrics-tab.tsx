/**
 * The Metrics tab: the samples of a chosen range from `metrics.query`, then
 * every 5 s the samples newer than the last one, appended, so the charts
 * grow in place rather than redraw from scratch.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { MetricsSample } from '../../../../shared/telemetry-api.js';
import { ErrorNote } from '../components.js';
import { useInterval } from '../hooks.js';
import { useSession } from '../session.js';
import { Chart } from './chart.js';
import { appendSamples, containerCharts, hostCharts } from './metric-series.js';

const RANGES = ['15m', '1h', '6h', '24h'] as const;
const POLL_MS = 5000;

export function MetricsTab({ id }: { id: string }) {
  const { api } = useSession();
  const [range, setRange] = useState<string>('1h');
  const [samples, setSamples] = useState<MetricsSample[] | undefined>();
  const [error, setError] = useState<unknown>();
  const held = useRef<MetricsSample[]>([]);
  const polling = useRef(false);

  useEffect(() => {
    let current = true;
    held.current = [];
    setSamples(undefined);
    api.call('metrics.query', { device: id, since: range }).then(
      (result) => {
        if (!current) return;
        held.current = result.samples;
        setSamples(result.samples);
        setError(undefined);
      },
      (err: unknown) => current && setError(err),
    );
    return () => {
      current = false;
    };
  }, [api, id, range]);

  useInterval(() => {
    const last = held.current.at(-1);
    if (samples === undefined || polling.current) return;
    polling.current = true;
    // From the last sample's time (inclusive at the hub: appendSamples drops what is held), or the range for a device that had none.
    api
      .call('metrics.query', { device: id, since: last?.ts ?? range })
      .then(
        (result) => {
          const next = appendSamples(held.current, result.samples);
          if (next === held.current) return;
          held.current = next;
          setSamples(next);
          setError(undefined);
        },
        (err: unknown) => setError(err),
      )
      .finally(() => {
        polling.current = false;
      });
  }, POLL_MS);

  return (
    <section class="metrics-tab">
      <div class="toolbar">
        <label>
          Range{' '}
          <select value={range} onChange={(e) => setRange((e.target as HTMLSelectElement).value)}>
            {RANGES.map((r) => (
              <option key={r} value={r}>
                last {r}
              </option>
            ))}
          </select>
        </label>
        <span class="help">{samples === undefined ? 'Loading…' : `${samples.length} samples, newest every ${POLL_MS / 1000} s`}</span>
      </div>
      {error !== undefined && <ErrorNote error={error} />}
      <h2>Host</h2>
      <div class="charts">
        {hostCharts(samples ?? []).map((chart) => (
          <Chart key={chart.name} chart={chart} />
        ))}
      </div>
      <h2>Containers</h2>
      <div class="charts">
        {(() => {
          const charts = containerCharts(samples ?? []);
          return charts.length === 0 ? (
            <p class="help">{samples === undefined ? 'Loading…' : 'No container samples in this range.'}</p>
          ) : (
            charts.map((chart) => <Chart key={chart.name} chart={chart} />)
          );
        })()}
      </div>
    </section>
  );
}
