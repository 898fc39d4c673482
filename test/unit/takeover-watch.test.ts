import { describe, expect, it } from 'vitest';
import { type TakeoverPolicy, TakeoverWatch } from '../../agent/takeover-watch.js';

const POLICY: TakeoverPolicy = { streak: 3, baseMs: 30_000, maxMs: 600_000, minShortLivedMs: 60_000, random: () => 0.5 };
const takenOver = { livedMs: 2_000, byHub: true };

describe('TakeoverWatch', () => {
  it('backs off from the third hub-closed short connection in a row, the window doubling to the cap', () => {
    const watch = new TakeoverWatch(POLICY);
    expect(watch.ended(takenOver)).toBeUndefined();
    expect(watch.ended(takenOver)).toBeUndefined();
    const delays = Array.from({ length: 8 }, () => watch.ended(takenOver)?.delayMs);
    // Half the window plus half of the rest (random 0.5): 3/4 of 30 s, 60 s, … up to 3/4 of 600 s.
    expect(delays).toEqual([22_500, 45_000, 90_000, 180_000, 360_000, 450_000, 450_000, 450_000]);
  });

  it('never waits less than half the window', () => {
    const watch = new TakeoverWatch({ ...POLICY, random: () => 0 });
    watch.ended(takenOver);
    watch.ended(takenOver);
    expect(watch.ended(takenOver)).toEqual({ streak: 3, delayMs: 15_000 });
  });

  it('is not fooled by a lost link, a timeout or a connection that lived long', () => {
    const watch = new TakeoverWatch(POLICY);
    for (const other of [
      { livedMs: 2_000, byHub: false }, // reset, keepalive timeout
      { livedMs: 61_000, byHub: true }, // a hub restart after a while
    ]) {
      watch.ended(takenOver);
      watch.ended(takenOver);
      expect(watch.ended(other)).toBeUndefined();
      expect(watch.ended(takenOver)).toBeUndefined(); // the streak started over
    }
  });

  it('still counts a connection that lived as long as the other agent waited', () => {
    const watch = new TakeoverWatch(POLICY);
    watch.ended(takenOver);
    watch.ended(takenOver);
    watch.ended(takenOver); // window 30 s
    watch.ended(takenOver); // window 60 s: short now means under 120 s
    expect(watch.ended({ livedMs: 100_000, byHub: true })?.streak).toBe(5);
    expect(watch.ended({ livedMs: 400_000, byHub: true })).toBeUndefined();
  });
});
