/** A metrics sample as the agent sends it (agent/telemetry/metrics/compact.ts): noise digits cut, nothing else changed. */
import { describe, expect, it } from 'vitest';
import { compactSample } from '../../agent/telemetry/metrics/compact.js';
import { Metrics, validate } from '../../shared/index.js';
import { metricsSample } from '../support/fixtures.js';

describe('compactSample', () => {
  it('keeps two decimals of percentages, loads and temperature and whole seconds of uptime, and every other field as it was', () => {
    const raw = metricsSample(3);
    raw.host = {
      ...raw.host,
      cpuPercent: 12.345678912,
      load1: 0.756789,
      load5: 0.5,
      load15: 0.254999,
      temperatureC: 48.3333333,
      uptimeSeconds: 43021.37,
    };
    raw.containers = raw.containers.map((c) => ({ ...c, cpuPercent: 0.0062825920108769 }));
    raw.agent = { rssBytes: 61_234_176, cpuPercent: 0.51234, logLinesDropped: 0 };
    const sample = compactSample(raw);
    expect(sample.host).toEqual({
      ...raw.host,
      cpuPercent: 12.35,
      load1: 0.76,
      load5: 0.5,
      load15: 0.25,
      temperatureC: 48.33,
      uptimeSeconds: 43021,
    });
    expect(sample.containers.map((c) => c.cpuPercent)).toEqual(raw.containers.map(() => 0.01));
    expect(sample.containers.map(({ cpuPercent: _, ...rest }) => rest)).toEqual(raw.containers.map(({ cpuPercent: _, ...rest }) => rest));
    expect(sample.agent).toEqual({ ...raw.agent, cpuPercent: 0.51 });
    expect(sample.seq).toBe(raw.seq);
    expect(sample.ts).toBe(raw.ts);
    expect(validate(Metrics, sample).ok).toBe(true);
    expect(JSON.stringify(sample).length).toBeLessThan(JSON.stringify(raw).length);
  });

  it('leaves out what the sample left out (no temperature, no agent part)', () => {
    const raw = metricsSample(4);
    const { temperatureC: _, ...host } = raw.host;
    const { agent: __, ...withoutAgent } = { ...raw, host };
    const sample = compactSample(withoutAgent);
    expect('temperatureC' in sample.host).toBe(false);
    expect('agent' in sample).toBe(false);
  });
});
