/**
 * Telemetry a device sends without being asked: log batches and metric
 * samples (events are in messages.ts, beside the other device messages).
 *
 * Every batch and sample carries a `seq` that is unique per device, so the hub
 * can store a redelivered message once. Units are in the field names: bytes,
 * percent (0–100 of the whole machine, all cores together), seconds, °C.
 *
 * On the link a payload may be encoded (shared/telemetry-encoding.ts), and a
 * live metrics sample may go as a delta against an earlier whole one; the
 * hub restores both, and stores and relays only whole samples and batches,
 * as the plain JSON these schemas describe.
 *
 * Metric samples are compact: percentages, load averages and temperatures
 * carry at most METRIC_DECIMALS decimals and uptime whole seconds (the agent
 * rounds; more digits were noise that cost the link bytes on every sample).
 */
import { type Static, Type } from '@sinclair/typebox';
import { Seq, Timestamp } from './messages.js';
import { Name } from './spec.js';

const Bytes = Type.Number({ minimum: 0 });
/**
 * RFC 3339 by shape only: a log line is the one field checked tens of
 * thousands of times a second, and ajv's full date-time format (which also
 * rejects 30 February) cost a tenth of the hub's ingest time. A shape-valid
 * but impossible date is stored with the hub's arrival time for `--since`.
 */
const LineTimestamp = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$' });
const Percent = Type.Number({ minimum: 0 });
const Count = Type.Integer({ minimum: 0 });

/**
 * `stdout` and `stderr` are the container's own streams; `system` lines are
 * written by the agent about the stream (e.g. "suppressed 1200 lines").
 */
export const LOG_STREAMS = ['stdout', 'stderr', 'system'] as const;
export type LogStream = (typeof LOG_STREAMS)[number];

export const LogLine = Type.Object(
  {
    app: Name,
    container: Name,
    stream: Type.Union(LOG_STREAMS.map((s) => Type.Literal(s))),
    /** When Docker received the line (its own timestamp, not the agent's). */
    ts: LineTimestamp,
    line: Type.String(),
    /** Set when the agent cut the line at its length cap. */
    truncated: Type.Optional(Type.Boolean()),
    /** On a `system` marker line: how many lines were dropped before it. */
    suppressed: Type.Optional(Count),
    /** A job's line: `app` is the job's name (`flotilla logs DEVICE --job NAME`). */
    job: Type.Optional(Type.Literal(true)),
  },
  { additionalProperties: false },
);
export type LogLine = Static<typeof LogLine>;

/** `…/devices/{id}/logs`: lines of any of the device's apps, oldest first. */
export const MAX_LINES_PER_BATCH = 65_536;
export const LogBatch = Type.Object(
  { seq: Seq, lines: Type.Array(LogLine, { minItems: 1, maxItems: MAX_LINES_PER_BATCH }) },
  { additionalProperties: false },
);
export type LogBatch = Static<typeof LogBatch>;

export const DiskUsage = Type.Object(
  {
    /** What the path is: `root` for `/`, `docker` for Docker's data root. */
    name: Type.String({ minLength: 1, maxLength: 32 }),
    path: Type.String(),
    usedBytes: Bytes,
    freeBytes: Bytes,
    totalBytes: Bytes,
  },
  { additionalProperties: false },
);
export type DiskUsage = Static<typeof DiskUsage>;

export const HostMetrics = Type.Object(
  {
    cpuPercent: Percent,
    cpuCount: Type.Integer({ minimum: 1 }),
    load1: Type.Number({ minimum: 0 }),
    load5: Type.Number({ minimum: 0 }),
    load15: Type.Number({ minimum: 0 }),
    memTotalBytes: Bytes,
    /** MemAvailable: what a new process could use without swapping. */
    memAvailableBytes: Bytes,
    memUsedBytes: Bytes,
    disks: Type.Array(DiskUsage),
    /** The hottest thermal zone, where /sys exposes one. */
    temperatureC: Type.Optional(Type.Number()),
    /** Counters since boot, over every interface but loopback. */
    netRxBytes: Bytes,
    netTxBytes: Bytes,
    uptimeSeconds: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type HostMetrics = Static<typeof HostMetrics>;

export const ContainerMetrics = Type.Object(
  {
    app: Name,
    container: Name,
    id: Type.String(),
    cpuPercent: Percent,
    memBytes: Bytes,
    /** The container's memory limit; absent when it has none. */
    memLimitBytes: Type.Optional(Bytes),
    netRxBytes: Bytes,
    netTxBytes: Bytes,
    blkReadBytes: Bytes,
    blkWriteBytes: Bytes,
    pids: Count,
    restartCount: Count,
  },
  { additionalProperties: false },
);
export type ContainerMetrics = Static<typeof ContainerMetrics>;

/** The agent's own footprint, so its cost on the device is visible. */
export const AgentMetrics = Type.Object(
  {
    rssBytes: Bytes,
    cpuPercent: Percent,
    /** Log lines dropped (rate limit, buffer full, or link down) since the agent started. */
    logLinesDropped: Count,
    /** What waits in the outbox for the hub, and what it dropped (full or expired) since the agent started. */
    outbox: Type.Optional(Type.Object({ messages: Count, bytes: Bytes, dropped: Count }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type AgentMetrics = Static<typeof AgentMetrics>;

/** Decimals the agent keeps in a sample's percentages, load averages and temperatures. */
export const METRIC_DECIMALS = 2;

/** `…/devices/{id}/metrics`: one sample. */
export const Metrics = Type.Object(
  {
    seq: Seq,
    ts: Timestamp,
    host: HostMetrics,
    containers: Type.Array(ContainerMetrics),
    agent: Type.Optional(AgentMetrics),
  },
  { additionalProperties: false },
);
export type Metrics = Static<typeof Metrics>;

/**
 * The command (`…/devices/{id}/commands`, type TELEMETRY_LINK_COMMAND) with
 * which the hub tunes how a device sends telemetry on its link; an agent that
 * does not know it ignores it. The hub sends it whenever the agent subscribes
 * to its commands (every connection), and again while someone follows the
 * device's logs.
 */
export const TELEMETRY_LINK_COMMAND = 'telemetry.link';

export const TelemetryLinkArgs = Type.Object(
  {
    /** The payload encodings this hub decodes (shared/telemetry-encoding.ts), preferred first; absent or empty: plain JSON only. */
    encodings: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 16 })),
    /**
     * Someone follows the device's logs: send a batch once its oldest line is
     * this old (instead of the agent's own, longer window)…
     */
    liveLogBatchMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 60_000 })),
    /** …for this long from receipt, unless told again; 0 ends it at once. */
    liveForMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
);
export type TelemetryLinkArgs = Static<typeof TelemetryLinkArgs>;
