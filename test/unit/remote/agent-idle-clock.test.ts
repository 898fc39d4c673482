/** The session idle clock on fake time: it fires once, a timeout after the last touch, and never after stop(). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IdleClock } from '../../../agent/remote/idle-clock.js';

describe('IdleClock', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires once, a timeout after the start when nothing touches it', () => {
    const onIdle = vi.fn();
    new IdleClock(60_000, onIdle);
    vi.advanceTimersByTime(59_999);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onIdle).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(10 * 60_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it('counts the timeout from the last touch', () => {
    const onIdle = vi.fn();
    const clock = new IdleClock(60_000, onIdle);
    vi.advanceTimersByTime(50_000);
    clock.touch();
    vi.advanceTimersByTime(50_000);
    clock.touch();
    vi.advanceTimersByTime(59_000);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it('never fires after stop()', () => {
    const onIdle = vi.fn();
    const clock = new IdleClock(1_000, onIdle);
    vi.advanceTimersByTime(500);
    clock.stop();
    vi.advanceTimersByTime(10_000);
    expect(onIdle).not.toHaveBeenCalled();
  });
});
