/** Reads the hub's `/metrics` with a real Prometheus text-format parser. */
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';

export type { ParsedFamily };

export async function scrape(httpUrl: string): Promise<{ contentType: string | null; families: ParsedFamily[] }> {
  const res = await fetch(`${httpUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics: HTTP ${res.status}`);
  return { contentType: res.headers.get('content-type'), families: parsePrometheusTextFormat(await res.text()) };
}

export function parseMetrics(text: string): ParsedFamily[] {
  return parsePrometheusTextFormat(text);
}

export function family(families: ParsedFamily[], name: string): ParsedFamily | undefined {
  return families.find((f) => f.name === name);
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
export function sampleValue(families: ParsedFamily[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matches = (family(families, name)?.metrics ?? []).filter((m) =>
    Object.entries(labels).every(([key, value]) => m.labels?.[key] === value),
  );
  if (matches.length > 1) throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matches[0]?.value === undefined ? undefined : Number(matches[0].value);
}

/** Every label set of `name`, for asserting exactly which series exist. */
export function labelSets(families: ParsedFamily[], name: string): Record<string, string>[] {
  return (family(families, name)?.metrics ?? []).map((m) => m.labels ?? {});
}
