/**
 * What the telemetry commands (`logs`, `events`, `top`, `metrics`) share:
 * their option parsers, a stop signal for Ctrl-C, the backlog-then-follow
 * loop, and the cells that show times, percentages and sizes.
 */
import { InvalidArgumentError } from 'commander';
import { formatBytes, type LinkUsage } from '../shared/index.js';
import { HubStreamClosedError, HubUnreachableError } from './client.js';
import { UsageError } from './errors.js';

/** `--tail N`: a non-negative integer. */
export function parseTail(value: string): number {
  if (!/^[0-9]{1,9}$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer.');
  return Number(value);
}

export const SINCE_HELP = 'only what is newer than a duration back from now (10m, 1h, 2d) or an RFC 3339 time';
export const UNTIL_HELP = 'only what is at or before a duration back from now (10m, 1h, 2d) or an RFC 3339 time (not with --follow)';

/** `--until` with `--follow` is refused here, before asking the hub: a follow never reaches an end. */
export function refuseUntilWithFollow(options: { until?: string; follow?: boolean }): void {
  if (options.until !== undefined && options.follow === true) {
    throw new UsageError('--until cannot be used with --follow: following has no end (drop -f to read up to --until)');
  }
}

export interface Interrupt {
  /** Aborts on the first SIGINT or SIGTERM, or when stdout's reader goes away. */
  signal: AbortSignal;
  /** Removes the signal handlers; a later Ctrl-C kills the process as usual. */
  dispose(): void;
}

/**
 * Ctrl-C ends a live command cleanly: the handlers only abort the signal, and
 * the command, seeing it aborted, returns, so the process exits 0 once its
 * connections are closed. So does a closed pipe (`flotilla logs -f | head`):
 * Node ignores SIGPIPE, and the write's EPIPE would otherwise be an unhandled
 * 'error' event with a stack trace.
 */
export function interruptSignal(): Interrupt {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // The stdout listener stays: writes already queued may still fail after the command returns.
    },
  };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

export interface FollowPlan<T extends { id: number }> {
  /** The records the query selects now (since/tail), oldest first. */
  backlog(): Promise<T[]>;
  /** The records stored after `afterId` (or, when the backlog was empty, after the same query), as they come. */
  follow(afterId: number | undefined, signal: AbortSignal): AsyncIterable<T>;
  printBacklog(records: readonly T[]): void;
  printRecord(record: T): void;
}

/**
 * Prints the backlog as one block (so it can be laid out together, and a 404
 * or a bad `--since` fails before any stream is opened), then follows from
 * the last id printed: the hub's cursor means nothing stored in between is
 * missed and nothing is printed twice. Returns when Ctrl-C is pressed.
 *
 * The hub ends the stream of a follower that falls too far behind; a stream
 * that brought records before it ended is therefore opened again from the
 * cursor. A stream that ends without bringing anything, or a hub that no
 * longer answers, is "hub closed the stream" (exit 1).
 */
export async function backlogThenFollow<T extends { id: number }>(plan: FollowPlan<T>, follow: boolean): Promise<void> {
  const interrupt = follow ? interruptSignal() : undefined;
  try {
    const records = await plan.backlog();
    plan.printBacklog(records);
    if (!interrupt) return;
    let cursor = records.at(-1)?.id;
    for (let attempt = 0; !interrupt.signal.aborted; attempt++) {
      let progressed = false;
      try {
        for await (const record of plan.follow(cursor, interrupt.signal)) {
          if (cursor !== undefined && record.id <= cursor) continue;
          cursor = record.id;
          progressed = true;
          plan.printRecord(record);
        }
        return;
      } catch (err) {
        if (attempt > 0 && err instanceof HubUnreachableError) throw new HubStreamClosedError(err.hub, err.reason);
        if (!(err instanceof HubStreamClosedError) || !progressed) throw err;
      }
    }
  } finally {
    interrupt?.dispose();
  }
}

/** `2026-11-28T09:22:59Z`: UTC to the second; what does not parse is shown as it came. */
export function formatTime(ts: string | undefined): string {
  if (ts === undefined) return '-';
  const at = Date.parse(ts);
  if (Number.isNaN(at)) return ts;
  return new Date(at).toISOString().replace(/\.[0-9]+Z$/, 'Z');
}

/** `12.5`, or `-` when unknown. */
export function formatNumber(value: number | undefined, digits = 1): string {
  return value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

/** `412.0 MiB/1.9 GiB`; just the used part when there is no total; `-` when unknown. */
export function formatUsage(used: number | undefined, total: number | undefined): string {
  if (used === undefined) return '-';
  return total === undefined ? formatBytes(used) : `${formatBytes(used)}/${formatBytes(total)}`;
}

/** Bytes per second between two counter readings; undefined across a reset (reboot) or without elapsed time. */
export function rate(from: { value: number; ts: string }, to: { value: number; ts: string }): number | undefined {
  const seconds = (Date.parse(to.ts) - Date.parse(from.ts)) / 1000;
  if (!(seconds > 0) || to.value < from.value) return undefined;
  return (to.value - from.value) / seconds;
}

export function formatRate(bytesPerSecond: number | undefined): string {
  return bytesPerSecond === undefined ? '-' : `${formatBytes(bytesPerSecond)}/s`;
}

const DAY_MS = 86_400_000;
/** Averages over less than this are mostly the connection's start (CONNECT, the retained desired state): not shown. */
const MIN_AVERAGE_MS = 60_000;

/** Both directions' link bytes averaged per day since the hub began counting; undefined until a minute has passed. */
export function linkBytesPerDay(usage: LinkUsage, now: number): number | undefined {
  if (usage.linkBytesIn === undefined || usage.linkBytesOut === undefined || usage.linkBytesSince === undefined) return undefined;
  const elapsed = now - Date.parse(usage.linkBytesSince);
  if (!(elapsed >= MIN_AVERAGE_MS)) return undefined;
  return ((usage.linkBytesIn + usage.linkBytesOut) * DAY_MS) / elapsed;
}
