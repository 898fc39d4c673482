/**
 * Per-device series for the Prometheus exporter, filled and written out
 * without prom-client's per-series work: at 5,000 devices a scrape is ~65,000
 * lines, and prom-client's Gauge hashes and validates labels on every set()
 * and its Registry formats each line through a few arrays and a regex or two
 * (0.3–0.9 s on the hub's event loop at 5,000 devices: BENCHMARKS.md,
 * "Prometheus"). A SeriesGauge takes its values as a list, replaced wholesale
 * at each scrape, and SeriesRegistry writes them as text in one pass, each
 * label set rendered once per scrape and shared by the series that carry it.
 * The text is what prom-client writes for the same values.
 */
import { Registry } from 'prom-client';

/**
 * A label set, rendered once (`{device="dev-1"}`) for every series that carries it.
 * Built by `labels()`; the same object may be added to any number of gauges.
 */
export interface SeriesLabels {
  readonly text: string;
}

export function labels(set: Readonly<Record<string, string>>): SeriesLabels {
  let text = '';
  for (const key in set) text += `${text === '' ? '' : ','}${key}="${escapeLabelValue(set[key]!)}"`;
  return { text: text === '' ? '' : `{${text}}` };
}

/**
 * A gauge whose series are replaced wholesale at each scrape, as a list. It
 * implements the part of prom-client's metric interface that Registry reads
 * (name, type, get()); SeriesRegistry writes its text itself.
 */
export class SeriesGauge {
  readonly type = 'gauge';
  labelSets: SeriesLabels[] = [];
  values: number[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    /** Runs at the start of get(): fills this and any gauges registered after it. */
    private readonly fill?: () => void,
  ) {}

  add(labelSet: SeriesLabels, value: number): void {
    this.labelSets.push(labelSet);
    this.values.push(value);
  }

  reset(): void {
    this.labelSets = [];
    this.values = [];
  }

  /** prom-client's shape of the values (its Registry's JSON output reads this). */
  async get() {
    this.fill?.();
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: 'sum' as const,
      values: this.values.map((value, i) => ({ labels: parseLabels(this.labelSets[i]!.text), value })),
    };
  }

  /** The exposition text: HELP, TYPE, then one line per series. */
  text(): string {
    this.fill?.();
    const name = escapeText(this.name);
    let out = `# HELP ${name} ${escapeText(this.help)}\n# TYPE ${name} gauge`;
    for (let i = 0; i < this.values.length; i++) out += `\n${name}${this.labelSets[i]!.text} ${valueText(this.values[i]!)}`;
    return out;
  }
}

/** A prom-client Registry that writes SeriesGauges' text itself (everything else as prom-client does). */
export class SeriesRegistry extends Registry {
  /**
   * prom-client's own metrics(), but SeriesGauges write their text
   * themselves. Metrics are read in registration order, each after the one
   * before has been read whole, so a fill on an earlier metric is done
   * before a later one is read, an asynchronous fill (a store read) too.
   */
  override async metrics(): Promise<string> {
    // prom-client formats one metric with getMetricsAsString, which its types leave out.
    const own = this as unknown as { getMetricsAsString(metric: unknown): Promise<string> };
    const parts: string[] = [];
    for (const metric of this.getMetricsAsArray() as unknown[]) {
      parts.push(metric instanceof SeriesGauge ? metric.text() : await own.getMetricsAsString(metric));
    }
    return `${parts.join('\n\n')}\n`;
  }

  register(gauge: SeriesGauge): SeriesGauge {
    this.registerMetric(gauge as unknown as Parameters<Registry['registerMetric']>[0]);
    return gauge;
  }
}

/** The exposition format's escapes, as prom-client writes them. */
function escapeText(text: string): string {
  return text.includes('\\') || text.includes('\n') ? text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : text;
}

function escapeLabelValue(value: string): string {
  return value.includes('"') || value.includes('\\') || value.includes('\n') ? escapeText(value).replace(/"/g, '\\"') : value;
}

function valueText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  return `${value}`;
}

/** `{a="x",b="y"}` back to its labels (for get(), which nothing on the scrape path calls). */
function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const match of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
    out[match[1]!] = match[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
  }
  return out;
}
