/**
 * The last lines of a container's log, from the engine's answer to a
 * non-following `logs` request with `tail` and `timestamps` (a job's output
 * for its report). Pure: bytes in, entries out.
 *
 * A non-TTY log is multiplexed: frames of an 8-byte header (stream type,
 * three zero bytes, payload length uint32 BE) and their payload. `tail`
 * counts lines per stream, so stdout and stderr come back as up to `lines`
 * each: they are merged by the engine's timestamps and cut to `lines`.
 */
import { LogLineSplitter } from './docker-log-lines.js';
import { timestampNanos } from './log-time.js';
import type { LogEntry } from './runtime.js';

const HEADER_BYTES = 8;
const STDERR = 2;

export function tailLines(raw: Buffer, tty: boolean, lines: number, maxLineBytes: number): LogEntry[] {
  const stdout: LogEntry[] = [];
  const stderr: LogEntry[] = [];
  const out = new LogLineSplitter('stdout', maxLineBytes, (entry) => stdout.push(entry));
  const err = new LogLineSplitter('stderr', maxLineBytes, (entry) => stderr.push(entry));
  if (tty) {
    out.push(raw);
  } else {
    for (let offset = 0; offset + HEADER_BYTES <= raw.length; ) {
      const length = raw.readUInt32BE(offset + 4);
      const payload = raw.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
      (raw.readUInt8(offset) === STDERR ? err : out).push(payload);
      offset += HEADER_BYTES + length;
    }
  }
  out.end();
  err.end();
  return mergeByTime(stdout, stderr).slice(-lines);
}

/** Two streams, each in order, as one: by timestamp, stdout first on a tie. */
function mergeByTime(a: readonly LogEntry[], b: readonly LogEntry[]): LogEntry[] {
  const merged: LogEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && (timestampNanos(x.ts) ?? 0n) <= (timestampNanos(y.ts) ?? 0n))) {
      merged.push(x as LogEntry);
      i++;
    } else {
      merged.push(y);
      j++;
    }
  }
  return merged;
}
