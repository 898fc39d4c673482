import { describe, expect, it } from 'vitest';
import { LogBuffer, lineCost } from '../../agent/telemetry/logs/log-buffer.js';
import { RateLimit, TokenBucket } from '../../agent/telemetry/logs/rate-limit.js';
import type { LogLine } from '../../shared/index.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

let n = 0;
function line(app: string, text = `line ${n++}`, container = 'main'): LogLine {
  return { app, container, stream: 'stdout', ts: `2024-05-01T12:00:${String(n % 60).padStart(2, '0')}.000000000Z`, line: text };
}

const texts = (lines: LogLine[]) => lines.map((l) => (l.stream === 'system' ? `[${l.app}] ${l.line}` : l.line));

describe('token bucket and rate limit', () => {
  it('allows a burst, then the rate', () => {
    const c = clock();
    const bucket = new TokenBucket(10, 20, c.now);
    let passed = 0;
    for (let i = 0; i < 100; i++) if (bucket.take()) passed++;
    expect(passed).toBe(20);
    c.advance(500);
    passed = 0;
    for (let i = 0; i < 100; i++) if (bucket.take()) passed++;
    expect(passed).toBe(5);
  });

  it('once dry, stays shut until a second of tokens is back, so a flood is one marker a second, not one a line', () => {
    const c = clock();
    const limit = new RateLimit(100, c.now);
    let passed = 0;
    for (let i = 0; i < 1000; i++) if (limit.admit()) passed++;
    expect(passed).toBe(200); // the burst
    // A steady flood of 10 lines per ms for 3.5 s: runs of a second's worth, once a second.
    const runs: number[] = [];
    let current = 0;
    for (let ms = 0; ms < 3500; ms++) {
      c.advance(1);
      for (let i = 0; i < 10; i++) {
        if (limit.admit()) current++;
        else if (current > 0) {
          runs.push(current);
          current = 0;
        }
      }
    }
    expect(runs.length).toBeLessThanOrEqual(3);
    expect(runs.every((r) => r >= 99)).toBe(true);
    const total = runs.reduce((a, b) => a + b, 0) + current;
    expect(total).toBeGreaterThanOrEqual(290);
    expect(total).toBeLessThanOrEqual(310);
  });
});

describe('log buffer', () => {
  it('hands lines out oldest first across apps, in batches bounded by bytes', () => {
    const buffer = new LogBuffer({ maxBytes: 10_000, now: clock().now });
    for (const app of ['a', 'b', 'a', 'c', 'b']) buffer.offer(line(app, `${app}${n++}`));
    const cost = lineCost(line('a', 'a00'));
    const first = buffer.take(cost * 2);
    expect(first).toHaveLength(2);
    const rest = buffer.take(100_000);
    expect(texts([...first, ...rest]).map((t) => t[0])).toEqual(['a', 'b', 'a', 'c', 'b']);
    expect(buffer.bytes).toBe(0);
    expect(buffer.empty).toBe(true);
    // A single line larger than the batch still goes out on its own.
    buffer.offer(line('a', 'x'.repeat(500)));
    expect(buffer.take(10)).toHaveLength(1);
  });

  it('drops and counts beyond its bound, then says so in order: a marker before the next accepted line', () => {
    const one = lineCost(line('a', 'l00'));
    const buffer = new LogBuffer({ maxBytes: one * 5, now: clock().now });
    const offered = ['l01', 'l02', 'l03', 'l04', 'l05', 'l06', 'l07'].map((t) => buffer.offer(line('a', t)));
    expect(offered).toEqual([true, true, true, true, true, false, false]);
    expect(buffer.droppedLines).toBe(2);
    expect(buffer.bytes).toBeLessThanOrEqual(one * 5);
    expect(texts(buffer.take(one * 3))).toEqual(['l01', 'l02', 'l03']);
    // Room again: the marker goes in first, then the line.
    expect(buffer.offer(line('a', 'l08'))).toBe(true);
    const out = buffer.take(100_000);
    expect(texts(out)).toEqual(['l04', 'l05', '[a] suppressed 2 lines (buffer full)', 'l08']);
    expect(out[2]).toMatchObject({ stream: 'system', container: 'main', suppressed: 2 });
  });

  it('reports drops at the next take when no line of the container came since', () => {
    const buffer = new LogBuffer({ maxBytes: 10_000, now: clock().now });
    buffer.offer(line('a', 'before'));
    buffer.drop('a', 'main', '2024-05-01T12:00:00.5Z', 'rate limit', 1200);
    expect(buffer.empty).toBe(false);
    const out = buffer.take(100_000);
    expect(texts(out)).toEqual(['before', '[a] suppressed 1200 lines (rate limit)']);
    expect(out[1]).toEqual({
      app: 'a',
      container: 'main',
      stream: 'system',
      ts: '2024-05-01T12:00:00.5Z',
      line: 'suppressed 1200 lines (rate limit)',
      suppressed: 1200,
    });
    expect(buffer.droppedLines).toBe(1200);
    expect(buffer.empty).toBe(true);
  });

  it('does not let one app fill the buffer against another: a quiet app evicts the flooder’s newest lines', () => {
    const one = lineCost(line('flood', 'f000'));
    const buffer = new LogBuffer({ maxBytes: one * 10, now: clock().now });
    let accepted = 0;
    for (let i = 0; i < 100; i++) if (buffer.offer(line('flood', `f${String(i).padStart(3, '0')}`))) accepted++;
    // Alone, the flooder may use the whole buffer.
    expect(accepted).toBe(10);
    for (let i = 0; i < 4; i++) expect(buffer.offer(line('quiet', `q${i}xx`))).toBe(true);
    expect(buffer.bytesOf('quiet')).toBe(4 * one);
    // The flooder is now over its share: its new lines are dropped, the quiet app's still get in.
    expect(buffer.offer(line('flood', 'f100'))).toBe(false);
    expect(buffer.offer(line('quiet', 'q4xx'))).toBe(true);
    expect(buffer.bytes).toBeLessThanOrEqual(one * 10);
    // Up to half each, and no further.
    expect(buffer.offer(line('quiet', 'q5xx'))).toBe(false);
    const out = texts(buffer.take(1_000_000));
    expect(out.filter((t) => t.startsWith('q'))).toEqual(['q0xx', 'q1xx', 'q2xx', 'q3xx', 'q4xx']);
    expect(out.filter((t) => t.startsWith('f'))).toEqual(['f000', 'f001', 'f002', 'f003', 'f004']);
    expect(out).toContain('[flood] suppressed 96 lines (buffer full)');
    expect(out).toContain('[quiet] suppressed 1 line (buffer full)');
    expect(buffer.droppedLines).toBe(97);
  });

  it('keeps one marker while the link stays down, however many takes are missed', () => {
    const one = lineCost(line('a', 'l00'));
    const buffer = new LogBuffer({ maxBytes: one * 2, now: clock().now });
    // Marker materialised by a take that could not send everything…
    buffer.offer(line('a', 'l01'));
    buffer.offer(line('a', 'l02'));
    buffer.drop('a', 'main', line('a').ts, 'rate limit', 5);
    expect(texts(buffer.take(1))).toEqual(['l01']);
    buffer.drop('a', 'main', line('a').ts, 'rate limit', 5);
    expect(texts(buffer.take(1))).toEqual(['l02']);
    // …both batches of drops end up in one marker.
    expect(texts(buffer.take(100_000))).toEqual(['[a] suppressed 10 lines (rate limit)']);
  });
});
