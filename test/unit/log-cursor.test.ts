/**
 * The log ledger's pure logic: line positions where lines share a
 * timestamp, what a restarted agent sends again and where it resumes, and
 * the ledger's file.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CursorFile } from '../../agent/telemetry/logs/cursor-file.js';
import {
  batchSeqOf,
  comparePositions,
  type LinePosition,
  type LineRange,
  PositionCounter,
  placeInRange,
  rangesOf,
  ShipLedger,
} from '../../agent/telemetry/logs/log-cursor.js';
import { estimateLostToRotation, rotationMarkerText } from '../../agent/telemetry/logs/rotation.js';

const p = (nanos: number, at: number): LinePosition => ({ nanos: BigInt(nanos), at });
const range = (from: LinePosition, to: LinePosition): LineRange => ({ from, to });

describe('line positions', () => {
  it('rank lines sharing a timestamp, and restart the rank at a new one', () => {
    const counter = new PositionCounter();
    expect([10, 10, 10, 11, 12, 12].map((n) => counter.next(BigInt(n)))).toEqual([
      p(10, 1),
      p(10, 2),
      p(10, 3),
      p(11, 1),
      p(12, 1),
      p(12, 2),
    ]);
  });

  it('order by timestamp, then by rank', () => {
    expect(comparePositions(p(10, 3), p(11, 1))).toBeLessThan(0);
    expect(comparePositions(p(10, 3), p(10, 2))).toBeGreaterThan(0);
    expect(comparePositions(p(10, 2), p(10, 2))).toBe(0);
  });

  it('place a re-read line before, in or after a recorded range, ties at its ends included', () => {
    const r = range(p(10, 2), p(12, 1));
    expect(placeInRange(p(10, 1), r)).toBe('before');
    expect(placeInRange(p(10, 2), r)).toBe('in');
    expect(placeInRange(p(11, 7), r)).toBe('in');
    expect(placeInRange(p(12, 1), r)).toBe('in');
    expect(placeInRange(p(12, 2), r)).toBe('after');
  });

  it('give each container of a batch the range from its first line to its last', () => {
    const ranges = rangesOf([
      { id: 'a', position: p(10, 1) },
      { id: 'b', position: p(10, 1) },
      { id: 'a', position: p(10, 2) },
      { id: 'a', position: p(14, 1) },
    ]);
    expect(ranges).toEqual(
      new Map([
        ['a', range(p(10, 1), p(14, 1))],
        ['b', range(p(10, 1), p(10, 1))],
      ]),
    );
  });
});

describe('ship ledger', () => {
  it('sends again, under their seqs, exactly the batches not settled, and resumes after the last recorded line', () => {
    const ledger = new ShipLedger();
    ledger.begin('a', p(5, 0));
    ledger.handed(101, new Map([['a', range(p(10, 1), p(10, 3))]]));
    ledger.handed(102, new Map([['a', range(p(11, 1), p(12, 1))]]));
    ledger.handed(103, new Map([['a', range(p(12, 2), p(13, 1))]]));
    // Acknowledged out of order: 102 settles, but 101 still holds the shipped position back.
    expect(ledger.settled(102)).toBe(true);
    const plan = ledger.resumePlan();
    expect(plan.replays.map((r) => r.seq)).toEqual([101, 103]);
    expect(plan.replays[0]?.ranges.get('a')).toEqual(range(p(10, 1), p(10, 3)));
    expect(plan.after.get('a')).toEqual(p(13, 1));
  });

  it('drops batches once they and every older one are settled; a repeated or unknown settlement changes nothing', () => {
    const ledger = new ShipLedger();
    ledger.handed(1, new Map([['a', range(p(10, 1), p(10, 1))]]));
    ledger.handed(2, new Map([['a', range(p(11, 1), p(11, 1))]]));
    ledger.settled(2);
    expect(ledger.recorded).toBe(2);
    expect(ledger.settled(1)).toBe(true);
    expect(ledger.recorded).toBe(0);
    expect(ledger.settled(1)).toBe(false);
    expect(ledger.settled(77)).toBe(false);
    expect(ledger.resumePlan()).toEqual({ after: new Map([['a', p(11, 1)]]), replays: [] });
  });

  it('keeps the first position of a container and never moves a shipped position back', () => {
    const ledger = new ShipLedger();
    ledger.begin('a', p(5, 0));
    ledger.begin('a', p(9, 0));
    expect(ledger.resumePlan().after.get('a')).toEqual(p(5, 0));
    ledger.handed(1, new Map([['a', range(p(20, 1), p(20, 2))]]));
    ledger.settled(1);
    ledger.begin('a', p(6, 0));
    expect(ledger.resumePlan().after.get('a')).toEqual(p(20, 2));
  });

  it('forgets removed containers but still sends their unsettled batches (the reader skips what is gone)', () => {
    const ledger = new ShipLedger();
    ledger.begin('a', p(1, 0));
    ledger.begin('b', p(1, 0));
    ledger.handed(
      7,
      new Map([
        ['a', range(p(2, 1), p(2, 1))],
        ['b', range(p(3, 1), p(3, 1))],
      ]),
    );
    ledger.retain(new Set(['a']));
    const plan = ledger.resumePlan();
    expect(plan.replays.map((r) => [...r.ranges.keys()])).toEqual([['a', 'b']]);
    expect([...plan.after.keys()].sort()).toEqual(['a', 'b']);
    ledger.settled(7);
    ledger.retain(new Set(['a']));
    expect([...ledger.resumePlan().after.keys()]).toEqual(['a']);
  });

  it('survives its JSON form with nanosecond timestamps beyond a double', () => {
    const ledger = new ShipLedger();
    const big = 1_733_300_000_123_456_789n;
    ledger.begin('a', { nanos: big, at: 0 });
    ledger.handed(2 ** 33 + 5, new Map([['a', { from: { nanos: big + 1n, at: 1 }, to: { nanos: big + 1n, at: 4 } }]]));
    const copy = ShipLedger.fromJson(JSON.parse(JSON.stringify(ledger.toJson())));
    expect(copy.resumePlan()).toEqual(ledger.resumePlan());
    expect(copy.resumePlan().after.get('a')).toEqual({ nanos: big + 1n, at: 4 });
  });

  it('reads a batch seq from a queued payload without parsing its lines', () => {
    expect(batchSeqOf(Buffer.from(JSON.stringify({ seq: 4294967297, lines: [{ line: '{"seq":1}' }] })))).toBe(4294967297);
    expect(batchSeqOf(Buffer.from('{"lines":[],"seq":3}'))).toBeUndefined();
  });
});

describe('lines lost to log rotation', () => {
  const s = (seconds: number) => BigInt(seconds * 1e9);

  it("estimates them from the held lines' rate over the gap since the last line shipped", () => {
    // Shipped up to t=10 s; the engine holds 101 lines from t=20 s to t=30 s (10 a second): about 99 in between.
    expect(estimateLostToRotation(s(10), { count: 101, firstNanos: s(20), lastNanos: s(30) })).toBe(99);
    expect(rotationMarkerText(99)).toBe('99 lines lost to log rotation');
  });

  it('says at least one when the rate cannot be told (one line held, or all in one instant)', () => {
    expect(estimateLostToRotation(s(10), { count: 1, firstNanos: s(20), lastNanos: s(20) })).toBe(1);
    expect(estimateLostToRotation(s(10), { count: 5, firstNanos: s(20), lastNanos: s(20) })).toBe(1);
    expect(estimateLostToRotation(s(10), { count: 3, firstNanos: s(10.001), lastNanos: s(60) })).toBe(1);
    expect(rotationMarkerText(1)).toBe('1 line lost to log rotation');
  });
});

describe('cursor file', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('round-trips the ledger in place, whole blocks, private to the agent; a torn or foreign file reads as absent', () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-ledger-'));
    const path = join(dir, 'sub', 'log-ledger.json');
    const file = new CursorFile(path);
    expect(file.load()).toBeUndefined();
    const ledger = new ShipLedger();
    ledger.begin('a', p(5, 0));
    for (let seq = 1; seq <= 200; seq++) ledger.handed(seq, new Map([['a', range(p(seq * 10, 1), p(seq * 10, 2))]]));
    file.save(ledger.toJson());
    const large = statSync(path).size;
    expect(large % 4096).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    for (let seq = 1; seq <= 200; seq++) ledger.settled(seq);
    file.save(ledger.toJson());
    expect(statSync(path).size).toBe(4096);
    const loaded = file.load();
    expect(loaded && ShipLedger.fromJson(loaded).resumePlan()).toEqual(ledger.resumePlan());

    writeFileSync(path, readFileSync(path, 'utf8').slice(0, 20));
    expect(file.load()).toBeUndefined();
    writeFileSync(path, '{"v":2}');
    expect(file.load()).toBeUndefined();
  });
});
