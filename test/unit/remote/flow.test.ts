import { describe, expect, it } from 'vitest';
import { OVERSHOOT_BYTES, ReceiveWindow, SendCredit } from '../../../shared/remote/flow.js';

describe('session flow control', () => {
  it('a sender pauses when its credit is spent and resumes on a grant', () => {
    const credit = new SendCredit(1000);
    credit.open(1);
    expect(credit.spend(1, 600)).toBe(true);
    expect(credit.spend(1, 600)).toBe(false);
    expect(credit.available(1)).toBe(-200);
    let resumed = 0;
    credit.onCredit(1, () => resumed++);
    credit.grant(1, 100);
    expect(resumed).toBe(0);
    credit.grant(1, 300);
    expect(resumed).toBe(1);
    credit.grant(1, 300);
    expect(resumed).toBe(1);
  });

  it('a receiver grants back what it consumed in quarter windows, and refuses an overrun', () => {
    const grants: [number, number][] = [];
    const window = new ReceiveWindow((channel, bytes) => grants.push([channel, bytes]), 4000);
    window.open(5);
    expect(window.received(5, 4000)).toBe(true);
    window.consumed(5, 600);
    expect(grants).toEqual([]);
    window.consumed(5, 500);
    expect(grants).toEqual([[5, 1100]]);
    expect(window.received(5, 1100 + OVERSHOOT_BYTES)).toBe(true);
    expect(window.received(5, 1)).toBe(false);
  });

  it('a sender and a receiver that never consumes stop at the window', () => {
    const credit = new SendCredit(64 * 1024);
    const window = new ReceiveWindow((channel, bytes) => credit.grant(channel, bytes), 64 * 1024);
    credit.open(1);
    window.open(1);
    let sent = 0;
    while (credit.available(1) > 0) {
      credit.spend(1, 16 * 1024);
      expect(window.received(1, 16 * 1024)).toBe(true);
      sent += 16 * 1024;
    }
    expect(sent).toBe(64 * 1024);
    window.consumed(1, 16 * 1024);
    expect(credit.available(1)).toBe(16 * 1024);
  });
});
