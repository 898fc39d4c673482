/**
 * What the hub reads of its stored telemetry, whichever engine holds it: the
 * telemetry file (SQLite, one hub) or the shared PostgreSQL database (every
 * replica reads what any replica stored). Both engines give the same answer
 * for the same rows, and log record ids are the same on both: the batch's id ×
 * MAX_LINES_PER_BATCH + the line's index.
 */
import type { EventRecord, LogRecord, MetricsSample } from '../../shared/index.js';
import type { EventQuery, LogQuery, MetricsQuery, RecentHostMetrics, TelemetryStore } from './store.js';

export type { EventQuery, LogQuery, MetricsQuery, RecentHostMetrics } from './store.js';

export interface TelemetryReads {
  /** A device's lines, oldest first (see TelemetryStore.queryLogs for the window and paging rules). */
  queryLogs(q: LogQuery): Promise<LogRecord[]>;
  /** Events in storage order: the newest `tail`, or the oldest `limit` of the window. */
  queryEvents(q: EventQuery): Promise<EventRecord[]>;
  /** A device's samples of the window, oldest first. */
  queryMetrics(q: MetricsQuery): Promise<MetricsSample[]>;
  /** Up to `perDevice` of each device's newest host figures among the newest `maxRows` samples, oldest first. */
  recentHostMetrics(perDevice: number, maxRows: number): Promise<RecentHostMetrics[]>;
  /** The newest stored sample of every device. */
  latestMetrics(): Promise<MetricsSample[]>;
}

/** The telemetry file's reads, answered on this thread (better-sqlite3 is synchronous). */
export class SqliteTelemetryReads implements TelemetryReads {
  constructor(readonly store: TelemetryStore) {}

  async queryLogs(q: LogQuery): Promise<LogRecord[]> {
    return this.store.queryLogs(q);
  }

  async queryEvents(q: EventQuery): Promise<EventRecord[]> {
    return this.store.queryEvents(q);
  }

  async queryMetrics(q: MetricsQuery): Promise<MetricsSample[]> {
    return this.store.queryMetrics(q);
  }

  async recentHostMetrics(perDevice: number, maxRows: number): Promise<RecentHostMetrics[]> {
    return this.store.recentHostMetrics(perDevice, maxRows);
  }

  async latestMetrics(): Promise<MetricsSample[]> {
    return this.store.latestMetrics();
  }
}
