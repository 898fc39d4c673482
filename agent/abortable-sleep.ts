/**
 * The agent's one wait that an AbortSignal ends: backoffs between download attempts, a spent
 * download budget waiting for midnight.
 *
 * Invariants:
 * - It resolves after `ms`, or rejects with `signal.reason` itself the moment the signal aborts (at
 *   once when it already has). Node's timers/promises setTimeout rejects with an AbortError that
 *   carries the reason only as its `cause`; the agent's image downloads promise their callers the
 *   reason itself (a paused download says why, and a superseded one is not a failure), so a wait
 *   inside them must keep it.
 * - Either way it leaves no timer and no listener on the signal behind: a signal that lives for a
 *   whole download sees many waits.
 * - Timers are injectable, so a unit test can move a clock by hand across hours.
 */

/** Where a wait's timer comes from. */
export interface SleepTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const nodeTimers: SleepTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Resolves after `ms`; rejects with `signal.reason` when the signal aborts first. */
export function abortableSleep(ms: number, signal: AbortSignal, timers: SleepTimers = nodeTimers): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      timers.clearTimeout(handle);
      reject(signal.reason);
    };
    const handle = timers.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
