/**
 * What the hub's telemetry methods return (`logs.query`, `events.query`,
 * `metrics.query`, `devices.top`) over HTTP, over the MQTT request API and, one
 * record per message, on the HTTP follow streams. The hub builds them
 * (broker/telemetry/) and the CLI reads them.
 *
 * Parameters, the same on every transport (HTTP takes them as query strings):
 *
 *   logs.query    { device, app? | job?, since?, until?, tail?, afterId? }
 *   events.query  { device?, app? | job?, since?, until?, tail?, afterId? }
 *   metrics.query { device, since?, tail? }
 *   devices.top   {}
 *
 * `app` keeps an app's records, `job` a job's of that name (its log lines, and
 * its `job-` events), never the other's; giving both is refused.
 * `since` is a duration back from now (`10m`, `1h`, `2d`) or an RFC 3339 time;
 * `until` (logs and events; same forms) keeps records at or before it, like
 * `docker logs --until`, and is refused before `since` or with a follow stream;
 * `tail` keeps the newest N of what matched (still returned oldest first);
 * `afterId` returns only records stored after that id (a follower's cursor).
 * Without `since` or `tail`, logs and events default to the newest
 * DEFAULT_TAIL, metrics to the last hour.
 */
import type { DeviceEvent } from './schemas/messages.js';
import type { AgentMetrics, ContainerMetrics, HostMetrics, LogLine } from './schemas/telemetry.js';

export const DEFAULT_TAIL = 100;
/** The most records one query returns; a follower pages with `afterId`. */
export const MAX_QUERY_RECORDS = 10_000;

/** One stored log line. `id` grows in the order lines were stored. */
export type LogRecord = LogLine & { id: number; device: string };

export interface LogsResult {
  lines: LogRecord[];
}

/** One stored event. */
export type EventRecord = DeviceEvent & { id: number; device: string };

export interface EventsResult {
  events: EventRecord[];
}

export interface MetricsSample {
  device: string;
  seq: number;
  ts: string;
  host: HostMetrics;
  containers: ContainerMetrics[];
  agent?: AgentMetrics;
}

/**
 * MQTT bytes on a device's connections since the hub started (whole packets,
 * not TCP/IP or TLS overhead): from the device, and to it. Absent when the
 * device has not connected since.
 */
export interface LinkUsage {
  linkBytesIn?: number;
  linkBytesOut?: number;
  /** When the hub started counting them. */
  linkBytesSince?: string;
}

export interface MetricsResult extends LinkUsage {
  device: string;
  samples: MetricsSample[];
}

/** One line of `flotilla top devices`: the newest sample of each known device. */
export interface TopRow extends LinkUsage {
  id: string;
  online: boolean;
  /** Time of the newest metrics sample; absent when the device never sent one. */
  ts?: string;
  cpuPercent?: number;
  load1?: number;
  memUsedBytes?: number;
  memTotalBytes?: number;
  /** The `root` disk (`/`). */
  diskUsedBytes?: number;
  diskTotalBytes?: number;
  temperatureC?: number;
  /** Managed containers in the sample. */
  containers?: number;
}

export interface TopResult {
  devices: TopRow[];
}

/**
 * HTTP follow streams (`?follow=true`) are Server-Sent Events: the backlog,
 * then each new record as it is stored, one `data:` line of JSON per record,
 * with this event name.
 */
export const FOLLOW_EVENT = { logs: 'log', events: 'event' } as const;
