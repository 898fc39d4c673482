/**
 * Docker's log output, one stream (stdout or stderr) at a time, into lines.
 * Pure: bytes in, `LogEntry`s out.
 *
 * With `timestamps: true` every line the engine sends starts with its
 * timestamp and a space ("2024-05-01T12:00:00.123456789Z hello\n"). Chunks
 * split lines anywhere, so a partial last line is kept until its newline, but
 * never beyond the cap: once it is that long it goes out marked `truncated`
 * and the rest of it, up to its newline, is skipped. Memory per stream is
 * therefore bounded by the cap whatever the container writes.
 *
 * Docker itself splits a line longer than 16 KiB into messages of 16 KiB
 * (its log copier's buffer), and each message gets its own timestamp prefix
 * with no newline between them; those inner prefixes are removed, so a line
 * comes out whole (up to the cap) with the timestamp of its first part.
 */
import { cutUtf8 } from '../telemetry/logs/line-cap.js';
import type { LogEntry } from './runtime.js';

/** Longest prefix Docker writes: "2024-05-01T12:00:00.123456789+00:00 ". */
export const TIMESTAMP_PREFIX_MAX = 36;
const PREFIX = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) /;
/** Docker's log copier buffer (moby daemon/logger/copier.go): longer lines arrive in parts of this size. */
export const DOCKER_MESSAGE_BYTES = 16 * 1024;

export class LogLineSplitter {
  private parts: Buffer[] = [];
  private length = 0;
  /** Inside a line that was already cut: drop bytes until its newline. */
  private skipping = false;
  private readonly maxRawBytes: number;

  constructor(
    private readonly stream: 'stdout' | 'stderr',
    private readonly maxLineBytes: number,
    private readonly onLine: (entry: LogEntry) => void,
    /** For a line without a timestamp prefix (an engine that does not write one). */
    private readonly now: () => string = () => new Date().toISOString(),
  ) {
    // Room for the line's own prefix and for the prefix of each 16 KiB part within the cap.
    this.maxRawBytes = maxLineBytes + TIMESTAMP_PREFIX_MAX * (1 + Math.floor(maxLineBytes / DOCKER_MESSAGE_BYTES));
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline < 0 ? chunk.length : newline;
      if (this.skipping) {
        if (newline >= 0) this.skipping = false;
        start = end + 1;
        continue;
      }
      const room = this.maxRawBytes - this.length;
      if (end - start > room) {
        this.parts.push(chunk.subarray(start, start + room));
        this.emit(true);
        if (newline < 0) this.skipping = true;
        start = end + 1;
        continue;
      }
      if (newline < 0) {
        // Copied: a partial line must not keep the whole chunk alive.
        this.parts.push(Buffer.from(chunk.subarray(start)));
        this.length += end - start;
        return;
      }
      this.parts.push(chunk.subarray(start, end));
      this.emit(false);
      start = end + 1;
    }
  }

  /** The stream ended: a last line without a newline is still a line. */
  end(): void {
    if (this.length > 0) this.emit(false);
    this.skipping = false;
  }

  private emit(cut: boolean): void {
    const raw = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    this.parts = [];
    this.length = 0;
    const head = raw.subarray(0, TIMESTAMP_PREFIX_MAX).toString('latin1');
    const m = PREFIX.exec(head);
    const ts = m?.[1] ?? this.now();
    let content = m ? withoutInnerPrefixes(raw.subarray(m[0].length)) : raw;
    // A TTY ends lines with CR LF.
    if (!cut && content.length > 0 && content[content.length - 1] === 0x0d) content = content.subarray(0, content.length - 1);
    const capped = cutUtf8(content, this.maxLineBytes);
    const truncated = cut || capped.length < content.length;
    this.onLine({ stream: this.stream, ts, line: capped.toString('utf8'), ...(truncated ? { truncated: true } : {}) });
  }
}

/** A line Docker split into 16 KiB parts, with the timestamp prefixes of the later parts removed. */
function withoutInnerPrefixes(content: Buffer): Buffer {
  const parts: Buffer[] = [];
  let rest = content;
  while (rest.length > DOCKER_MESSAGE_BYTES) {
    const m = PREFIX.exec(rest.subarray(DOCKER_MESSAGE_BYTES, DOCKER_MESSAGE_BYTES + TIMESTAMP_PREFIX_MAX).toString('latin1'));
    if (!m) break;
    parts.push(rest.subarray(0, DOCKER_MESSAGE_BYTES));
    rest = rest.subarray(DOCKER_MESSAGE_BYTES + m[0].length);
  }
  if (parts.length === 0) return content;
  parts.push(rest);
  return Buffer.concat(parts);
}
