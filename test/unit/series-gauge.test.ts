/**
 * SeriesRegistry writes SeriesGauges' text itself: it must be the text
 * prom-client writes for the same series (escapes included), and a scrape
 * must reflect each fill, not the one before.
 */
import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { labels, SeriesGauge, SeriesRegistry } from '../../broker/telemetry/series-gauge.js';

const SERIES: { labels: Record<string, string>; value: number }[] = [
  { labels: { device: 'dev-1' }, value: 37.5 },
  { labels: { device: 'dev-2', disk: 'odd "name" \\ with\nnewline' }, value: 4e9 },
  { labels: { device: 'dev-3' }, value: Number.POSITIVE_INFINITY },
  { labels: { device: 'dev-4' }, value: -0.125 },
];

describe('SeriesRegistry', () => {
  it("writes the same text as prom-client's Gauge for the same series", async () => {
    const reference = new Registry();
    const gauge = new Gauge({
      name: 'flotilla_test',
      help: 'A help\\text\nof two lines.',
      labelNames: ['device', 'disk'],
      registers: [reference],
    });
    for (const s of SERIES) gauge.set(s.labels, s.value);

    const registry = new SeriesRegistry();
    const series = registry.register(new SeriesGauge('flotilla_test', 'A help\\text\nof two lines.'));
    for (const s of SERIES) series.add(labels(s.labels), s.value);

    expect(await registry.metrics()).toBe(await reference.metrics());
  });

  it('fills at each scrape and keeps the other metrics in registration order', async () => {
    const registry = new SeriesRegistry();
    let devices = ['a', 'b'];
    const first = registry.register(
      new SeriesGauge('flotilla_first', 'First.', () => {
        first.reset();
        second.reset();
        for (const d of devices) {
          first.add(labels({ device: d }), 1);
          second.add(labels({ device: d }), 2);
        }
      }),
    );
    const second = registry.register(new SeriesGauge('flotilla_second', 'Second.'));
    new Gauge({ name: 'flotilla_plain', help: 'Plain.', registers: [registry] }).set(3);

    expect(await registry.metrics()).toBe(
      [
        '# HELP flotilla_first First.\n# TYPE flotilla_first gauge\nflotilla_first{device="a"} 1\nflotilla_first{device="b"} 1',
        '# HELP flotilla_second Second.\n# TYPE flotilla_second gauge\nflotilla_second{device="a"} 2\nflotilla_second{device="b"} 2',
        '# HELP flotilla_plain Plain.\n# TYPE flotilla_plain gauge\nflotilla_plain 3\n',
      ].join('\n\n'),
    );
    devices = ['c'];
    expect(await registry.metrics()).toContain('flotilla_second{device="c"} 2\n\n');
    expect(await registry.metrics()).not.toContain('device="a"');
  });
});
