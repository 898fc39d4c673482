/**
 * The state report is built from the same observation the planner used: what
 * an operator reads on `…/state` while a pull runs, or while the engine
 * cannot be reached, is what the agent last saw. Over the in-memory runtime.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type ObservedState, Reconciler } from '../../agent/reconcile/reconciler.js';
import type { ManagedContainer } from '../../agent/runtime/runtime.js';
import type { DesiredState } from '../../shared/index.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';

const IMAGE = 'registry.local/web:1';

const desired: DesiredState = {
  deviceId: 'dev-1',
  revision: 1,
  issuedAt: new Date().toISOString(),
  apps: [{ name: 'web', revision: 1, containers: [{ name: 'server', image: IMAGE }], update: { minReadySeconds: 0 } }],
};

/** An engine that can be taken away, as when dockerd restarts. */
class StoppableRuntime extends MemoryRuntime {
  down = false;
  override async listManaged(): Promise<ManagedContainer[]> {
    if (this.down) throw new Error('connect ENOENT /var/run/docker.sock');
    return super.listManaged();
  }
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

function start(runtime: MemoryRuntime): { reconciler: Reconciler; states: ObservedState[] } {
  const states: ObservedState[] = [];
  const reconciler = new Reconciler({ runtime, deviceId: 'dev-1', logger: pino({ level: 'silent' }), onState: (s) => states.push(s) });
  cleanup.push(
    () => reconciler.close(),
    () => runtime.close(),
  );
  return { reconciler, states };
}

async function settle(reconciler: Reconciler, done: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) {
    reconciler.trigger();
    await reconciler.idle();
  }
  expect(done()).toBe(true);
}

describe('the state report, from the observation of the tick', () => {
  it('shows a pull in progress', async () => {
    const runtime = new MemoryRuntime({ pullDelayMs: 50 });
    const { reconciler, states } = start(runtime);
    reconciler.setDesired(desired);
    await settle(reconciler, () => states.at(-1)?.apps[0]?.phase === 'running');
    expect(states.map((s) => s.apps[0]?.phase)).toContain('pulling');
    expect(states.find((s) => s.apps[0]?.phase === 'pulling')?.apps[0]).toMatchObject({ message: `pulling ${IMAGE}`, containers: [] });
  });

  it('reports every app unknown since the engine went away, with the containers last seen and the error', async () => {
    const runtime = new StoppableRuntime({ images: [IMAGE] });
    const { reconciler, states } = start(runtime);
    reconciler.setDesired(desired);
    await settle(reconciler, () => states.at(-1)?.apps[0]?.phase === 'running');
    const running = states.at(-1)!;

    runtime.down = true;
    const wentAway = Date.now();
    reconciler.trigger();
    await reconciler.idle();
    const error = 'container runtime unavailable: connect ENOENT /var/run/docker.sock';
    const down = states.at(-1)!;
    const since = down.apps[0]!.unknownSince!;
    expect(Date.parse(since)).toBeGreaterThanOrEqual(wentAway - 1);
    expect(down).toEqual({
      ...running,
      runtimeError: error,
      apps: running.apps.map((app) => ({
        ...app,
        phase: 'unknown',
        message: `${error} (since ${since}); last seen running`,
        unknownSince: since,
      })),
    });

    // Still down at the next look: unknown since the same moment.
    reconciler.trigger();
    await reconciler.idle();
    expect(states.at(-1)!.apps[0]!.unknownSince).toBe(since);

    runtime.down = false;
    reconciler.trigger();
    await reconciler.idle();
    expect(states.at(-1)).toEqual(running);
  });
});
