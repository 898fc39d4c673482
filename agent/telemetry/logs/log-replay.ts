/**
 * A recorded batch read again from the engine (see log-cursor.ts): each
 * container's lines from the first recorded position to the last, both
 * included, so the batch can go out again under its recorded seq.
 */
import type { LogLine } from '../../../shared/index.js';
import { formatNanos, timestampNanos } from '../../runtime/log-time.js';
import type { ContainerRuntime, LogEntry } from '../../runtime/runtime.js';
import { comparePositions, type LineRange, PositionCounter, placeInRange, type Replay } from './log-cursor.js';

/** How long reading one container's range may take (a range whose last line was rotated away waits for a newer one). */
const READ_TIMEOUT_MS = 10_000;

/** Whose lines a container writes: an app's, or with `job` a job's (its name in `app`). */
export interface LogSource {
  app: string;
  container: string;
  job?: true;
}

/** The batch's lines, container by container; a container no longer present has none. */
export async function readRecordedBatch(
  runtime: ContainerRuntime,
  containers: ReadonlyMap<string, LogSource>,
  replay: Replay,
  maxLineBytes: number,
): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for (const [id, range] of replay.ranges) {
    const c = containers.get(id);
    if (!c) continue;
    for (const entry of await readRange(runtime, id, range, maxLineBytes)) {
      lines.push({
        app: c.app,
        container: c.container,
        stream: entry.stream,
        ts: entry.ts,
        line: entry.line,
        ...(entry.truncated ? { truncated: true } : {}),
        ...(c.job ? { job: true as const } : {}),
      });
    }
  }
  return lines;
}

function readRange(runtime: ContainerRuntime, id: string, range: LineRange, maxLineBytes: number): Promise<LogEntry[]> {
  return new Promise((resolve) => {
    const out: LogEntry[] = [];
    // `since` is the range's first timestamp and inclusive, so ranks at that timestamp count from its first line.
    const counter = new PositionCounter();
    let done = false;
    let stop: (() => void) | undefined;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stop?.();
      resolve(out);
    };
    const timer = setTimeout(finish, READ_TIMEOUT_MS);
    const onLine = (entry: LogEntry) => {
      const ts = timestampNanos(entry.ts);
      if (done || ts === undefined) return;
      const position = counter.next(ts);
      const place = placeInRange(position, range);
      if (place === 'in') out.push(entry);
      if (place === 'after' || comparePositions(position, range.to) === 0) finish();
    };
    stop = runtime.followLogs(id, { since: formatNanos(range.from.nanos), maxLineBytes }, onLine, () => finish());
    if (done) stop();
  });
}
