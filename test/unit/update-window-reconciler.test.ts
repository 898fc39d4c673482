/**
 * The reconcile loop and an app's update window, over the in-memory runtime
 * with the device's clock injected: a new revision is pulled at once, the old
 * one keeps running and the state report names the window; the loop wakes
 * by itself when the window opens (nothing else triggers it here: no engine
 * events, no resync), and a forced revision does not wait. The clock runs at
 * the real pace from an instant the test sets, so a timer set on it fires
 * when the clock says.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type ObservedState, Reconciler } from '../../agent/reconcile/reconciler.js';
import type { DesiredState, UpdateWindow } from '../../shared/index.js';
import { webAppDesired } from '../support/fixtures.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';
import { waitFor } from '../support/wait.js';

const V1 = 'registry.local/web:1';
const V2 = 'registry.local/web:2';
const window: UpdateWindow = { days: ['mon-fri'], from: '02:00', to: '04:00', timezone: 'Europe/Berlin' };
/** Monday 7 December 2026, 02:00 in Berlin. */
const OPENS_AT = Date.parse('2026-12-07T01:00:00Z');

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A wall clock that runs at the real pace, set to any instant. */
class DeviceClock {
  private offset = 0;
  readonly now = () => Date.now() + this.offset;
  set(instant: number): void {
    this.offset = instant - Date.now();
  }
}

function device() {
  const clock = new DeviceClock();
  const engine = new MemoryRuntime({ now: clock.now });
  const states: ObservedState[] = [];
  const reconciler = new Reconciler({
    runtime: engine,
    deviceId: 'dev-1',
    logger: pino({ level: 'silent' }),
    onState: (s) => states.push(s),
    now: clock.now,
  });
  closers.push(
    () => reconciler.close(),
    () => engine.close(),
  );
  /** Runs ticks until `done`, as engine events and resyncs would. */
  const settle = async (done: () => boolean) => {
    for (let i = 0; i < 50 && !done(); i++) {
      reconciler.trigger();
      await reconciler.idle();
    }
    expect(done(), JSON.stringify(states.at(-1))).toBe(true);
  };
  const images = () =>
    engine
      .containers()
      .filter((c) => c.state === 'running')
      .map((c) => c.image);
  const app = () => states.at(-1)?.apps[0];
  return { clock, engine, reconciler, settle, images, app };
}

const withWindow = (revision: number, image: string, extra: Partial<DesiredState['apps'][number]> = {}): DesiredState => {
  const desired = webAppDesired(revision, image, { window });
  return { ...desired, apps: desired.apps.map((a) => ({ ...a, ...extra })) };
};

describe('an app update and its window, in the reconcile loop', () => {
  it('installs at once while the window is closed; pulls a new revision at once but swaps it in when the window opens, woken by itself', async () => {
    const { clock, engine, reconciler, settle, images, app } = device();
    clock.set(Date.parse('2026-12-06T12:00:00Z'));
    reconciler.setDesired(withWindow(1, V1));
    await settle(() => app()?.phase === 'running');
    expect(images()).toEqual([V1]);

    reconciler.setDesired(withWindow(2, V2));
    await settle(() => app()?.message?.includes('update window') === true);
    expect(app()).toMatchObject({
      revision: 2,
      phase: 'pending',
      message: 'revision 2 waits for its update window mon-fri 02:00–04:00 Europe/Berlin (opens 2026-12-07T01:00:00Z)',
    });
    expect(await engine.hasImage(V2)).toBe(true);
    expect(images()).toEqual([V1]);

    // The clock is set (as NTP would) to just before the window opens; one look, and then nothing but the loop's own timer.
    clock.set(OPENS_AT - 400);
    reconciler.trigger();
    await reconciler.idle();
    expect(images()).toEqual([V1]);
    await waitFor('v2 to run once the window opened', () => images().join() === V2 && app()?.phase === 'running', {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    expect(clock.now()).toBeGreaterThanOrEqual(OPENS_AT);
  });

  it('swaps a forced revision at once, and a newer desired state replaces the wait', async () => {
    const { clock, reconciler, settle, images, app } = device();
    clock.set(Date.parse('2026-12-06T12:00:00Z'));
    reconciler.setDesired(withWindow(1, V1));
    await settle(() => app()?.phase === 'running');
    reconciler.setDesired(withWindow(2, V2));
    await settle(() => app()?.message?.includes('update window') === true);

    reconciler.setDesired(withWindow(3, V2, { forceUpdate: true }));
    await settle(() => images().join() === V2 && app()?.phase === 'running');
    expect(app()).toMatchObject({ revision: 3, phase: 'running' });
  });
});
