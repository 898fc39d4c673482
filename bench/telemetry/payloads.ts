/**
 * What the simulated devices of bench/telemetry-ingest.ts publish: every
 * METRICS_EVERY-th message of a device is a metrics sample, the others are
 * log batches. Valid against shared/schemas/telemetry.ts.
 */
import type { LogBatch, Metrics } from '../../shared/index.js';

export const METRICS_EVERY = 10;

/** 1–5 lines (by seq), 3 on average, ~190 bytes each. */
export function logBatch(deviceId: string, seq: number, ts: string): LogBatch {
  const lines: LogBatch['lines'] = [];
  for (let n = 0; n <= seq % 5; n++) {
    lines.push({
      app: 'sensor-gateway',
      container: 'gateway',
      stream: n === 4 ? 'stderr' : 'stdout',
      ts,
      line: `level=info msg="reading stored" sensor=bme280 bus=i2c-1 temperature_c=${(18 + Math.random() * 8).toFixed(2)} humidity_pct=${(30 + Math.random() * 40).toFixed(1)} device=${deviceId} seq=${seq}`,
    });
  }
  return { seq, lines };
}

/** The shape of the agent's sample (test/support/fixtures.ts `metricsSample`): a small ARM board, one container. */
export function metricsSample(seq: number, ts: string): Metrics {
  const gib = 1024 ** 3;
  return {
    seq,
    ts,
    host: {
      cpuPercent: Math.round(Math.random() * 1000) / 10,
      cpuCount: 4,
      load1: 0.4,
      load5: 0.3,
      load15: 0.2,
      memTotalBytes: 4 * gib,
      memAvailableBytes: 3 * gib,
      memUsedBytes: 1 * gib,
      disks: [{ name: 'root', path: '/', usedBytes: 10 * gib, freeBytes: 20 * gib, totalBytes: 30 * gib }],
      temperatureC: 48.5,
      netRxBytes: 1000 * seq,
      netTxBytes: 2000 * seq,
      uptimeSeconds: 3600,
    },
    containers: [
      {
        app: 'sensor-gateway',
        container: 'gateway',
        id: 'c0ffee',
        cpuPercent: 3.5,
        memBytes: 64 * 1024 ** 2,
        netRxBytes: 10,
        netTxBytes: 20,
        blkReadBytes: 0,
        blkWriteBytes: 4096,
        pids: 3,
        restartCount: 0,
      },
    ],
    agent: { rssBytes: 48 * 1024 ** 2, cpuPercent: 0.8, logLinesDropped: 0 },
  };
}
