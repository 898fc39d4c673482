/**
 * The telemetry API methods, merged into the hub's method table so HTTP and
 * the MQTT request API answer alike (params and results declared in
 * shared/api/methods.ts, explained in shared/telemetry-api.ts).
 */
import { DEFAULT_TAIL, type LinkUsage, MAX_QUERY_RECORDS, parseDuration, type TopRow } from '../../shared/index.js';
import { ApiError } from '../dispatcher/errors.js';
import type { ApiHandlersFor } from '../dispatcher/method.js';
import type { DeviceStore } from '../store/devices.js';
import type { TelemetryIngest } from './ingest.js';
import type { LineOwner } from './log-filter.js';
import type { TelemetryReads } from './reads.js';

export interface TelemetryMethodDeps {
  /** Where stored telemetry is read: the telemetry file, or the replicas' shared database. */
  store: TelemetryReads;
  ingest: TelemetryIngest;
  /** Resolves once the ingest's newest samples hold every device's, on a hub replica those of devices connected to others too. */
  newestSamples?: () => Promise<void>;
  devices: DeviceStore;
  now: () => number;
  /** A device's MQTT bytes since the hub started (broker/mqtt/link-bytes.ts). */
  linkBytes?: (deviceId: string) => { bytesIn: number; bytesOut: number } | undefined;
}

const DEFAULT_METRICS_WINDOW_MS = 3_600_000;

export type TelemetryMethodName = 'logs.query' | 'events.query' | 'metrics.query' | 'devices.top';

export function telemetryMethods({
  store,
  ingest,
  newestSamples,
  devices,
  now,
  linkBytes,
}: TelemetryMethodDeps): ApiHandlersFor<TelemetryMethodName> {
  const linkBytesSince = new Date(now()).toISOString();
  const linkUsage = (id: string): LinkUsage => {
    const bytes = linkBytes?.(id);
    return bytes ? { linkBytesIn: bytes.bytesIn, linkBytesOut: bytes.bytesOut, linkBytesSince } : {};
  };
  const knownDevice = async (id: string) => {
    if (!(await devices.get(id))) throw ApiError.notFound('device', id);
    return id;
  };
  /** No window given at all: the newest DEFAULT_TAIL, like `kubectl logs --tail`. */
  const tailFor = (p: { since?: string; tail?: number; afterId?: number }) =>
    p.tail ?? (p.since === undefined && p.afterId === undefined ? DEFAULT_TAIL : undefined);

  return {
    'logs.query': async (p) => ({
      lines: await store.queryLogs({
        device: await knownDevice(p.device),
        ...recordOwner(p, 'lines'),
        ...windowMs(p, now()),
        afterId: p.afterId,
        tail: tailFor(p),
        limit: MAX_QUERY_RECORDS,
      }),
    }),

    'events.query': async (p) => ({
      events: await store.queryEvents({
        device: p.device === undefined ? undefined : await knownDevice(p.device),
        ...recordOwner(p, 'events'),
        ...windowMs(p, now()),
        afterId: p.afterId,
        tail: tailFor(p),
        limit: MAX_QUERY_RECORDS,
      }),
    }),

    'metrics.query': async (p) => ({
      device: p.device,
      samples: await store.queryMetrics({
        device: await knownDevice(p.device),
        sinceMs: sinceMs(p.since, now()) ?? (p.tail === undefined ? now() - DEFAULT_METRICS_WINDOW_MS : undefined),
        tail: p.tail,
        limit: MAX_QUERY_RECORDS,
      }),
      ...linkUsage(p.device),
    }),

    'devices.top': async () => {
      await newestSamples?.();
      return {
        devices: (await devices.list()).map((device): TopRow => {
          const sample = ingest.latest.get(device.id);
          const link = linkUsage(device.id);
          if (!sample) return { id: device.id, online: device.online, ...link };
          const { host } = sample;
          const root = host.disks.find((disk) => disk.name === 'root') ?? host.disks[0];
          return {
            id: device.id,
            online: device.online,
            ts: sample.ts,
            cpuPercent: host.cpuPercent,
            load1: host.load1,
            memUsedBytes: host.memUsedBytes,
            memTotalBytes: host.memTotalBytes,
            ...(root ? { diskUsedBytes: root.usedBytes, diskTotalBytes: root.totalBytes } : {}),
            ...(host.temperatureC !== undefined ? { temperatureC: host.temperatureC } : {}),
            containers: sample.containers.length,
            ...link,
          };
        }),
      };
    },
  };
}

/** An app's lines or events, or a job's (log-filter.ts); both at once would be a contradiction or a job under another name. */
export function recordOwner(p: { app?: string | undefined; job?: string | undefined }, records: 'lines' | 'events'): LineOwner {
  if (p.app !== undefined && p.job !== undefined) {
    throw new ApiError('invalid_request', `give app or job, not both: app "${p.app}" selects an app's ${records}, job "${p.job}" a job's`);
  }
  return p.job !== undefined ? { job: p.job } : p.app !== undefined ? { app: p.app } : {};
}

/** `10m` back from now, or an RFC 3339 time; undefined when not given. */
export function sinceMs(since: string | undefined, nowMs: number): number | undefined {
  return pointInTime('since', since, nowMs);
}

/**
 * A query's time window, `since` and `until` both inclusive (as `docker logs`
 * reads them); an end before the start is refused rather than answered with
 * nothing, since it is almost always the two swapped.
 */
export function windowMs(p: { since?: string; until?: string }, nowMs: number): { sinceMs?: number; untilMs?: number } {
  const start = pointInTime('since', p.since, nowMs);
  const end = pointInTime('until', p.until, nowMs);
  if (start !== undefined && end !== undefined && end < start) {
    throw new ApiError('invalid_request', `until (${p.until}) is before since (${p.since}): the window would be empty`);
  }
  return { ...(start !== undefined ? { sinceMs: start } : {}), ...(end !== undefined ? { untilMs: end } : {}) };
}

function pointInTime(name: 'since' | 'until', value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d{4}-\d{2}-\d{2}T/.test(value)) {
    const at = Date.parse(value);
    if (Number.isFinite(at)) return at;
  } else {
    try {
      return nowMs - parseDuration(value);
    } catch {
      // reported below, with both accepted forms
    }
  }
  throw new ApiError('invalid_request', `invalid ${name} "${value}": expected a duration such as 10m, 1h, 2d, or an RFC 3339 time`);
}
