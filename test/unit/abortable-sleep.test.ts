/**
 * The agent's abortable wait (agent/abortable-sleep.ts) on real timers: it ends on time, an abort
 * ends it early with the abort's reason itself (not Node's AbortError wrapping it), an aborted
 * signal ends it at once, and neither way leaves a listener on the signal.
 */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { abortableSleep, type SleepTimers } from '../../agent/abortable-sleep.js';

/** Node's timers, counted: how many are set and not yet fired or cleared. */
class CountedTimers implements SleepTimers {
  pending = new Set<unknown>();

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = setTimeout(() => {
      this.pending.delete(timer);
      fn();
    }, ms);
    this.pending.add(timer);
    return timer;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle);
    clearTimeout(handle as NodeJS.Timeout);
  }
}

describe('abortableSleep', () => {
  it('resolves once the time is up and leaves no listener on the signal', async () => {
    const controller = new AbortController();
    const timers = new CountedTimers();
    const waited = abortableSleep(20, controller.signal, timers);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    await expect(waited).resolves.toBeUndefined();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(timers.pending.size).toBe(0);
  });

  it('rejects with the abort reason itself, clearing its timer and listener', async () => {
    const controller = new AbortController();
    const timers = new CountedTimers();
    const reason = new Error('paused: another download goes first');
    const waited = abortableSleep(60_000, controller.signal, timers);
    controller.abort(reason);
    await expect(waited).rejects.toBe(reason);
    expect(timers.pending.size).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('rejects at once on a signal that aborted already, setting no timer', async () => {
    const controller = new AbortController();
    const timers = new CountedTimers();
    const reason = new Error('superseded');
    controller.abort(reason);
    await expect(abortableSleep(60_000, controller.signal, timers)).rejects.toBe(reason);
    expect(timers.pending.size).toBe(0);
  });

  it('uses Node timers when none are given', async () => {
    const controller = new AbortController();
    const waited = abortableSleep(60_000, controller.signal);
    controller.abort('closing');
    await expect(waited).rejects.toBe('closing');
  });
});
