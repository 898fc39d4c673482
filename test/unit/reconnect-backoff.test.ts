import { describe, expect, it } from 'vitest';
import { reconnectDelay } from '../../agent/reconnect-backoff.js';

const policy = { baseMs: 1000, maxMs: 60_000 };

describe('reconnect backoff with full jitter', () => {
  it('doubles the window per failed attempt up to the cap', () => {
    const top = () => 0.999999;
    expect([0, 1, 2, 3, 4, 5, 6, 7, 40, 5000].map((a) => reconnectDelay(a, policy, top))).toEqual([
      999, 1999, 3999, 7999, 15999, 31999, 59999, 59999, 59999, 59999,
    ]);
  });

  it('draws uniformly from zero to the window, so a fleet does not knock in lockstep', () => {
    expect(reconnectDelay(3, policy, () => 0)).toBe(0);
    expect(reconnectDelay(3, policy, () => 0.5)).toBe(4000);
    // 2,000 devices after a hub restart, fifth attempt (window 16 s): spread over the window, not bunched.
    const delays = Array.from({ length: 2000 }, () => reconnectDelay(4, policy));
    const perSecond = new Array(16).fill(0);
    for (const d of delays) perSecond[Math.floor(d / 1000)]++;
    expect(Math.max(...delays)).toBeLessThan(16_000);
    expect(Math.max(...perSecond)).toBeLessThan((2000 / 16) * 1.6);
    expect(Math.min(...perSecond)).toBeGreaterThan((2000 / 16) * 0.4);
  });
});
