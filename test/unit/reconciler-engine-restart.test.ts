/**
 * A new version on trial while the engine restarts: the exit the engine
 * causes as it stops is not the version's failure, the trial pauses while the
 * engine is away and resumes once it is back; a version that fails by itself
 * while the engine is up is still rolled back. Over the in-memory runtime,
 * made to behave as a stopping dockerd does (it refuses new connections, then
 * stops its containers while still answering on the connection already open),
 * with one clock for the agent and the engine.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type ObservedState, Reconciler } from '../../agent/reconcile/reconciler.js';
import { Records } from '../../agent/reconcile/records.js';
import type { StepEvent } from '../../agent/reconcile/step-events.js';
import type { ManagedContainer } from '../../agent/runtime/runtime.js';
import type { DesiredApp, DesiredState } from '../../shared/index.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';

const V1 = 'registry.local/web:1';
const V2 = 'registry.local/web:2';

function desired(revision: number, image: string, update: DesiredApp['update']): DesiredState {
  return {
    deviceId: 'dev-1',
    revision,
    issuedAt: new Date().toISOString(),
    apps: [{ name: 'web', revision, containers: [{ name: 'server', image }], update }],
  };
}

/** An engine that can be shutting down (no new connections) or gone, as dockerd is while it restarts. */
class RestartingEngine extends MemoryRuntime {
  stopping = false;
  gone = false;
  override async listManaged(): Promise<ManagedContainer[]> {
    if (this.gone) throw new Error('connect ENOENT /run/docker.sock');
    const finished = new Map(this.containers().map((c) => [c.id, c.finishedAt]));
    return (await super.listManaged()).map((c) => {
      const at = finished.get(c.id);
      return c.state === 'exited' && at !== undefined ? { ...c, finishedAt: new Date(at).toISOString() } : c;
    });
  }
  async confirmReachable(): Promise<void> {
    if (this.stopping || this.gone) throw new Error('connect ECONNREFUSED /run/docker.sock');
  }
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanup.splice(0)) fn();
});

function start() {
  const clock = { now: Date.parse('2026-12-01T10:00:00Z') };
  const engine = new RestartingEngine({ images: [V1, V2], now: () => clock.now });
  const records = new Records();
  const states: ObservedState[] = [];
  const events: StepEvent[] = [];
  const reconciler = new Reconciler({
    runtime: engine,
    deviceId: 'dev-1',
    logger: pino({ level: 'silent' }),
    records,
    now: () => clock.now,
    onState: (s) => states.push(s),
    onEvent: (e) => events.push(e),
  });
  cleanup.push(
    () => reconciler.close(),
    () => engine.close(),
  );
  const look = async () => {
    reconciler.trigger();
    await reconciler.idle();
    return states.at(-1)!;
  };
  const settle = async (done: () => boolean) => {
    for (let i = 0; i < 50 && !done(); i++) await look();
    expect(done()).toBe(true);
  };
  const app = () => states.at(-1)?.apps[0];
  const candidate = () => engine.containers().find((c) => c.image === V2)!;
  return { clock, engine, records, states, events, reconciler, look, settle, app, candidate };
}

/** v1 committed, then v2 on trial (30 s without a restart to pass). */
async function onTrial() {
  const t = start();
  t.reconciler.setDesired(desired(1, V1, { minReadySeconds: 0 }));
  await t.settle(() => t.app()?.phase === 'running' && t.records.view.get('web')?.committed?.revision === 1);
  t.reconciler.setDesired(desired(2, V2, { minReadySeconds: 30, healthTimeout: '60s' }));
  await t.settle(() => t.app()?.phase === 'starting' && t.candidate()?.state === 'running');
  expect(t.app()?.message).toBe('server: running for 0s of 30s without a restart');
  return t;
}

/** The engine shuts down: it stops taking connections, stops the candidate (SIGTERM, 143), and goes. */
async function engineGoesAway(t: Awaited<ReturnType<typeof onTrial>>) {
  t.clock.now += 5_000;
  const before = t.events.length;
  t.engine.stopping = true;
  t.engine.kill(t.candidate().id, 143);
  const shuttingDown = await t.look();
  expect(shuttingDown.runtimeError).toBe('container runtime unavailable: connect ECONNREFUSED /run/docker.sock');
  expect(shuttingDown.apps[0]).toMatchObject({ phase: 'unknown' });
  // Another look over the connection still open: nothing is done to a stopping engine, the trial stays paused.
  t.clock.now += 500;
  expect((await t.look()).runtimeError).toBe('container runtime unavailable: connect ECONNREFUSED /run/docker.sock');
  expect(t.events.slice(before)).toEqual([]);
  expect(t.candidate().state).toBe('exited');
  t.clock.now += 1_000;
  t.engine.gone = true;
  expect((await t.look()).runtimeError).toBe('container runtime unavailable: connect ENOENT /run/docker.sock');
  t.clock.now += 20_000;
}

function engineBack(t: Awaited<ReturnType<typeof onTrial>>) {
  t.engine.gone = false;
  t.engine.stopping = false;
}

const gateEvents = (events: StepEvent[]) => events.filter((e) => ['health-failed', 'rolled-back', 'health-passed'].includes(e.type));

describe('an engine restart while a new version is on trial', () => {
  it('does not roll it back: the engine starts it again, its trial resumes, and it is committed', async () => {
    const t = await onTrial();
    await engineGoesAway(t);
    engineBack(t);
    await t.engine.start(t.candidate().id); // its restart policy brings it back at the engine's start
    const back = await t.look();
    expect(back.runtimeError).toBeUndefined();
    expect(back.apps[0]).toMatchObject({ phase: 'starting', message: 'server: running for 0s of 30s without a restart' });
    expect(t.records.view.get('web')?.rolledBack).toBeUndefined();

    t.clock.now += 30_000;
    await t.settle(() => t.app()?.phase === 'running' && t.records.view.get('web')?.committed?.revision === 2);
    expect(gateEvents(t.events).map((e) => e.type)).toEqual(['health-passed', 'health-passed']);
    expect(t.engine.containers().map((c) => ({ image: c.image, state: c.state }))).toEqual([{ image: V2, state: 'running' }]);
  });

  it('starts it again itself when the engine does not, and commits it after its full trial', async () => {
    const t = await onTrial();
    const id = t.candidate().id;
    await engineGoesAway(t);
    engineBack(t);
    const seen = t.states.length;
    await t.settle(() => t.candidate().state === 'running');
    // Reported on trial meanwhile, never failed.
    const meanwhile = t.states.slice(seen).map((s) => s.apps[0]);
    expect(meanwhile.map((a) => a?.phase)).not.toContain('failed');
    expect(meanwhile[0]).toMatchObject({
      phase: 'starting',
      message: expect.stringMatching(/^server: container server was stopped while the engine went away \(after .*\); its trial resumes/),
    });
    expect(t.events.filter((e) => e.type === 'started').at(-1)).toMatchObject({
      message: expect.stringContaining('stopped by the engine while on trial'),
    });
    expect(t.candidate().id).toBe(id);

    t.clock.now += 29_000;
    expect((await t.look()).apps[0]).toMatchObject({ phase: 'starting', message: 'server: running for 29s of 30s without a restart' });
    t.clock.now += 1_000;
    await t.settle(() => t.records.view.get('web')?.committed?.revision === 2);
    expect(gateEvents(t.events).map((e) => e.type)).not.toContain('rolled-back');
  });

  it('still rolls back a version that exits by itself while the engine stays up', async () => {
    const t = await onTrial();
    t.clock.now += 5_000;
    t.engine.kill(t.candidate().id, 1);
    await t.settle(() => t.app()?.phase === 'rolled-back' && t.engine.containers().every((c) => c.image === V1 && c.state === 'running'));
    expect(t.records.view.get('web')?.rolledBack).toMatchObject({ revision: 2, reason: 'container server exited with code 1' });
    expect(gateEvents(t.events).map((e) => e.type)).toEqual(['health-passed', 'health-failed', 'rolled-back']);
  });

  it('still rolls back a version that fails by itself once the engine is back', async () => {
    const t = await onTrial();
    await engineGoesAway(t);
    engineBack(t);
    await t.engine.start(t.candidate().id);
    expect((await t.look()).apps[0]?.phase).toBe('starting');
    t.clock.now += 3_000;
    t.engine.kill(t.candidate().id, 1);
    await t.settle(() => t.records.view.get('web')?.rolledBack?.revision === 2);
    expect(gateEvents(t.events).map((e) => e.type)).toEqual(['health-passed', 'health-failed', 'rolled-back']);
  });
});
