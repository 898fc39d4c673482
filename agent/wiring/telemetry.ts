/** The device's logs and metrics, out through the uplink. */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AgentConfig } from '../config.js';
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
  });
  closer.add('log collector', () => logs.close());
  const metrics = new MetricsCollector({
    runtime,
    intervalMs: config.metricsIntervalMs,
    publish: (sample) => link.publishMetrics(sample),
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
