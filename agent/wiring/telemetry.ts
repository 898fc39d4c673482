/** The device's logs and metrics, out through the uplink. */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AgentConfig } from '../config.js';
import { LiveLogWindow } from '../telemetry/link-tuning.js';
import { CursorFile } from '../telemetry/logs/cursor-file.js';
import { LogCollector } from '../telemetry/logs/log-collector.js';
import { MetricsCollector } from '../telemetry/metrics/collector.js';
import type { Device } from './device.js';
import type { Uplink } from './uplink.js';

export function startTelemetry(config: AgentConfig, device: Device, uplink: Uplink, logger: Logger, closer: Closer): LogCollector {
  const { runtime, telemetrySeq } = device;
  const { link } = uplink;
  const logs = new LogCollector({
    runtime,
    sink: link,
    nextSeq: () => telemetrySeq.next(),
    logger: logger.child({ component: 'logs' }),
    rateLinesPerSecond: config.logRateLinesPerSecond,
    bufferBytes: config.logBufferBytes,
    lineMaxBytes: config.logLineMaxBytes,
    batchBytes: config.logBatchBytes,
    batchMs: config.logBatchMs,
    // Beside agent.db: the ledger must outlive the agent process, whatever the outbox's path.
    ledgerFile: new CursorFile(join(config.dataDir, 'log-ledger.json')),
  });
  // The outbox settles batches until the link closes (after the collector): the ledger hears of each.
  uplink.logsSettled.on((payloads) => logs.settled(payloads));
  closer.add('log collector', () => logs.close());
  // While someone follows this device's logs the hub leases a short window (link-tuning.ts).
  const live = new LiveLogWindow({ defaultMs: config.logBatchMs, apply: (ms) => logs.setBatchWindow(ms) });
  uplink.telemetryTuned.on((args) => live.tune(args));
  closer.add('live log window', () => live.stop());
  const metrics = new MetricsCollector({
    runtime,
    intervalMs: config.metricsIntervalMs,
    // The lines waiting leave with the sample: one TCP segment and one acknowledgement for both.
    publish: (sample) => {
      logs.sendWaiting();
      return link.publishMetrics(sample);
    },
    nextSeq: () => telemetrySeq.next(),
    logger: logger.child({ component: 'metrics' }),
    logLinesDropped: () => logs.droppedLines,
    outbox: () => link.outboxStats,
  });
  closer.add('metrics collector', () => metrics.stop());
  metrics.start();
  logs.start();
  return logs;
}
