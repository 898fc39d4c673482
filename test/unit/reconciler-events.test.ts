/**
 * The events the reconcile loop reports through a whole update, over the
 * in-memory runtime (no engine): what an operator reads on `…/events`.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Reconciler } from '../../agent/reconcile/reconciler.js';
import type { StepEvent } from '../../agent/reconcile/step-events.js';
import { webAppDesired as desired } from '../support/fixtures.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';

const A = 'registry.local/web:1';
const B = 'registry.local/web:2';

/** Runs the loop until it has nothing left to do (and no gate is pending). */
async function settle(reconciler: Reconciler, runtime: MemoryRuntime, done: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) {
    reconciler.trigger();
    await reconciler.idle();
  }
  expect(done(), JSON.stringify(runtime.containers().map((c) => [c.name, c.state]))).toBe(true);
}

describe('reconciler events through an update', () => {
  for (const strategy of ['download-then-kill', 'start-then-kill'] as const) {
    it(`${strategy}: a committed update reports no health failure for the old version it retires`, async () => {
      const runtime = new MemoryRuntime({ images: [A, B] });
      const events: StepEvent[] = [];
      const reconciler = new Reconciler({
        runtime,
        deviceId: 'dev-1',
        logger: pino({ level: 'silent' }),
        onState: () => undefined,
        onEvent: (event) => events.push(event),
      });
      const runningOnly = (image: string) => () => {
        const all = runtime.containers();
        return all.length === 1 && all[0]!.state === 'running' && all[0]!.image === image && events.at(-1)?.type !== 'started';
      };

      reconciler.setDesired(desired(1, A, { strategy }));
      await settle(reconciler, runtime, () => events.some((e) => e.type === 'health-passed'));
      reconciler.setDesired(desired(2, B, { strategy }));
      await settle(reconciler, runtime, () => runningOnly(B)() && events.filter((e) => e.type === 'health-passed').length === 2);
      reconciler.close();

      expect(events.filter((e) => e.type === 'health-failed')).toEqual([]);
      expect(events.map((e) => e.type)).not.toContain('rolled-back');
    });
  }
});
