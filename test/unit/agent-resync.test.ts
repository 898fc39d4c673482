/**
 * agent/wiring/resync.ts: what makes the agent look again — once at start,
 * on every engine event, on the resync timer, and after the engine's event
 * stream ends, on a new subscription — and that nothing of it outlives close.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { keepInSync, RESUBSCRIBE_MS } from '../../agent/wiring/resync.js';
import { Closer } from '../../shared/closer.js';
import { LogCapture } from '../support/logs.js';

const RESYNC_MS = 30_000;

/** An engine whose event stream the test drives: every subscription, live or ended. */
class EngineStub {
  readonly subscriptions: { onChange: () => void; onError: (err: Error) => void; live: boolean }[] = [];

  watch(onChange: () => void, onError: (err: Error) => void): () => void {
    const subscription = { onChange, onError, live: true };
    this.subscriptions.push(subscription);
    return () => {
      subscription.live = false;
    };
  }

  get live() {
    return this.subscriptions.filter((s) => s.live);
  }

  /** The stream ends, as when the engine restarts: the runtime calls onError once and delivers nothing more. */
  endStream(): void {
    for (const s of this.live) {
      s.live = false;
      s.onError(new Error('container event stream ended'));
    }
  }
}

describe('keepInSync', () => {
  let engine: EngineStub;
  let looks: { reconciler: number; logs: number };
  let logs: LogCapture;
  let closer: Closer;

  beforeEach(() => {
    vi.useFakeTimers();
    engine = new EngineStub();
    looks = { reconciler: 0, logs: 0 };
    logs = new LogCapture();
    closer = new Closer();
    keepInSync(
      { resyncIntervalMs: RESYNC_MS },
      {
        runtime: engine,
        reconciler: { trigger: () => void looks.reconciler++ },
        logs: { refresh: () => void looks.logs++ },
        logger: logs.logger,
      },
      closer,
    );
  });

  afterEach(async () => {
    await closer.close();
    vi.useRealTimers();
  });

  it('looks once at start, then on each engine event and each resync', () => {
    expect(looks).toEqual({ reconciler: 1, logs: 0 });
    expect(engine.live).toHaveLength(1);
    engine.live[0]!.onChange();
    expect(looks).toEqual({ reconciler: 2, logs: 1 });
    vi.advanceTimersByTime(RESYNC_MS);
    expect(looks).toEqual({ reconciler: 3, logs: 2 });
  });

  it('subscribes again after the event stream ends, and says so', () => {
    engine.endStream();
    expect(logs.matching('Docker event stream ended; re-subscribing')).toHaveLength(1);
    expect(engine.live).toHaveLength(0);
    vi.advanceTimersByTime(RESUBSCRIBE_MS - 1);
    expect(engine.live).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(engine.live).toHaveLength(1);
    engine.live[0]!.onChange();
    expect(looks.logs).toBe(1);
  });

  it('after close: no subscription, no resync, and no re-subscription pending', async () => {
    engine.endStream();
    await closer.close();
    vi.advanceTimersByTime(RESYNC_MS * 2);
    expect(engine.subscriptions).toHaveLength(1);
    expect(engine.live).toHaveLength(0);
    expect(looks).toEqual({ reconciler: 1, logs: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });
});
