import { describe, expect, it } from 'vitest';
import { LogLineSplitter } from '../../agent/runtime/docker-log-lines.js';
import { dockerSince, formatNanos, timestampNanos } from '../../agent/runtime/log-time.js';
import type { LogEntry } from '../../agent/runtime/runtime.js';
import { capLine, cutUtf8 } from '../../agent/telemetry/logs/line-cap.js';

const TS = '2024-05-01T12:00:00.123456789Z';

function splitter(maxLineBytes = 64) {
  const lines: LogEntry[] = [];
  const s = new LogLineSplitter(
    'stderr',
    maxLineBytes,
    (e) => lines.push(e),
    () => 'now',
  );
  return { s, lines };
}

describe('line cap', () => {
  it('cuts at a byte count without splitting a character, and marks the cut', () => {
    expect(capLine('hello', 5)).toEqual({ line: 'hello', truncated: false });
    expect(capLine('hello!', 5)).toEqual({ line: 'hello', truncated: true });
    // "é" is two bytes: a cut in its middle backs off before it.
    expect(capLine('abcé', 4)).toEqual({ line: 'abc', truncated: true });
    expect(capLine('€€', 5)).toEqual({ line: '€', truncated: true });
    expect(cutUtf8(Buffer.from('😀x'), 3).length).toBe(0);
  });
});

describe('Docker log lines', () => {
  it('splits chunks on newlines, keeps a partial line until its newline, and reads the timestamp prefix', () => {
    const { s, lines } = splitter();
    s.push(Buffer.from(`${TS} one\n${TS} tw`));
    expect(lines).toEqual([{ stream: 'stderr', ts: TS, line: 'one' }]);
    s.push(Buffer.from(`o\n2024-05-01T12:00:01Z three\r\n${TS} `));
    s.push(Buffer.from('\n'));
    expect(lines.slice(1)).toEqual([
      { stream: 'stderr', ts: TS, line: 'two' },
      { stream: 'stderr', ts: '2024-05-01T12:00:01Z', line: 'three' },
      { stream: 'stderr', ts: TS, line: '' },
    ]);
  });

  it('emits the last line of an ended stream even without a newline', () => {
    const { s, lines } = splitter();
    s.push(Buffer.from(`${TS} bye`));
    expect(lines).toEqual([]);
    s.end();
    expect(lines).toEqual([{ stream: 'stderr', ts: TS, line: 'bye' }]);
  });

  it('cuts a line at the cap as soon as it is reached and skips the rest of it up to its newline', () => {
    const { s, lines } = splitter(10);
    s.push(Buffer.from(`${TS} 0123456789ABC`));
    s.push(Buffer.from('DEF'.repeat(1000)));
    expect(lines).toEqual([{ stream: 'stderr', ts: TS, line: '0123456789', truncated: true }]);
    s.push(Buffer.from(`GHI\n${TS} next\n`));
    expect(lines.slice(1)).toEqual([{ stream: 'stderr', ts: TS, line: 'next' }]);
  });

  it('cuts a long line that arrives in one chunk too', () => {
    const { s, lines } = splitter(10);
    s.push(Buffer.from(`${TS} ${'x'.repeat(100)}\n${TS} ok\n`));
    expect(lines).toEqual([
      { stream: 'stderr', ts: TS, line: 'xxxxxxxxxx', truncated: true },
      { stream: 'stderr', ts: TS, line: 'ok' },
    ]);
  });

  it("joins the 16 KiB parts Docker splits a long line into, dropping the later parts' timestamps", () => {
    const { s, lines } = splitter(40_000);
    const a = 'a'.repeat(16 * 1024);
    const b = 'b'.repeat(16 * 1024);
    const later = '2024-05-01T12:00:00.123456999Z';
    // Chunks cut through the inner prefixes, as a socket may deliver them.
    const raw = Buffer.from(`${TS} ${a}${later} ${b}${later} ccc\n`);
    for (let i = 0; i < raw.length; i += 1000) s.push(raw.subarray(i, i + 1000));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({ stream: 'stderr', ts: TS, line: `${a}${b}ccc` });
  });

  it("stamps a line without Docker's prefix with the agent's time", () => {
    const { s, lines } = splitter();
    s.push(Buffer.from('plain\n'));
    expect(lines).toEqual([{ stream: 'stderr', ts: 'now', line: 'plain' }]);
  });
});

describe('log timestamps', () => {
  it('keeps all nine digits, for resuming exactly after the last line', () => {
    const n = timestampNanos(TS);
    expect(n).toBe(1714564800123456789n);
    expect(formatNanos(n!)).toBe(TS);
    expect(dockerSince(n!)).toBe('1714564800.123456789');
    expect(timestampNanos('2024-05-01T12:00:00Z')).toBe(1714564800000000000n);
    expect(timestampNanos('2024-05-01T14:00:00.5+02:00')).toBe(1714564800500000000n);
    expect(timestampNanos('yesterday')).toBeUndefined();
  });
});
