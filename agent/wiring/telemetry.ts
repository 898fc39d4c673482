/** The device's logs and metrics, out through the uplink. */
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { AgentConfig } from '../config.js';
import { LiveLogWindow } from '../telemetry/link-tuning.js';
import { CursorFile, type LedgerStore } from '../telemetry/logs/cursor-file.js';
import { defaultLedgerDir, LEDGER_FILE_NAME, LedgerFiles } from '../telemetry/logs/ledger-files.js';
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
    ledgerFile: ledgerStore(config, logger.child({ component: 'logs' })),
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

/** In RAM, with a copy beside agent.db at each clean stop; in the data dir alone when there is no RAM directory for it. */
function ledgerStore(config: AgentConfig, logger: Logger): LedgerStore {
  const diskPath = join(config.dataDir, LEDGER_FILE_NAME);
  const ramDir = config.logLedgerDir ?? defaultLedgerDir(config.dataDir, config.deviceId);
  if (ramDir === undefined || resolve(ramDir) === resolve(config.dataDir)) return new CursorFile(diskPath);
  return new LedgerFiles({ diskPath, ramDir, removeRamDir: config.logLedgerDir === undefined, logger });
}
