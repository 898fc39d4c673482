/**
 * The swap of a committed version for a new one as one step, over the
 * in-memory runtime: which engine calls the app is down between, what an
 * operator reads on `…/events`, and a swap cut short part-way that the next
 * ticks still finish, with the old version kept for a rollback.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Reconciler } from '../../agent/reconcile/reconciler.js';
import type { StepEvent } from '../../agent/reconcile/step-events.js';
import type { RestartPolicy } from '../../agent/runtime/runtime.js';
import { webAppDesired as desired } from '../support/fixtures.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';

const V1 = 'registry.local/web:1';
const V2 = 'registry.local/web:2';

/** The in-memory engine, with every call the agent makes written down in order (and a rename that can be made to fail once). */
class RecordingEngine extends MemoryRuntime {
  readonly log: string[] = [];
  failNextRenameTo: string | undefined;
  override async listManaged() {
    this.log.push('listManaged');
    return super.listManaged();
  }
  override async create(...args: Parameters<MemoryRuntime['create']>) {
    this.log.push(`create ${args[0].name ?? 'web_server'}`);
    return super.create(...args);
  }
  override async start(id: string) {
    this.log.push(`start ${this.nameOf(id)}`);
    return super.start(id);
  }
  override async stop(id: string, timeoutSeconds: number) {
    this.log.push(`stop ${this.nameOf(id)}`);
    return super.stop(id, timeoutSeconds);
  }
  override async rename(id: string, name: string) {
    this.log.push(`rename ${this.nameOf(id)} → ${name}`);
    if (this.failNextRenameTo !== undefined && name.startsWith(this.failNextRenameTo)) {
      this.failNextRenameTo = undefined;
      throw new Error('engine went away mid-swap');
    }
    return super.rename(id, name);
  }
  override async setRestartPolicy(id: string, policy: RestartPolicy) {
    this.log.push(`restart policy of ${this.nameOf(id)} → ${policy.name}`);
    return super.setRestartPolicy(id, policy);
  }
  override async remove(id: string) {
    this.log.push(`remove ${this.nameOf(id)}`);
    return super.remove(id);
  }
  private nameOf(id: string): string {
    return this.containers().find((c) => c.id === id)?.name ?? id;
  }
}

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

const BROKEN = 'registry.local/web:broken';

function agentOnEngine() {
  const engine = new RecordingEngine({
    images: [V1, V2, BROKEN],
    behaviour: (image) => (image === BROKEN ? { startFails: 'exec: "/app": stat /app: no such file or directory' } : undefined),
  });
  const events: StepEvent[] = [];
  const reconciler = new Reconciler({
    runtime: engine,
    deviceId: 'dev-1',
    logger: pino({ level: 'silent' }),
    onState: () => undefined,
    onEvent: (event) => events.push(event),
    backoffBaseMs: 1,
    backoffMaxMs: 1,
  });
  closers.push(
    () => reconciler.close(),
    () => engine.close(),
  );
  /** Runs ticks until `done`, as the engine's events and the gate's rechecks would. */
  const settle = async (done: () => boolean) => {
    for (let i = 0; i < 50 && !done(); i++) {
      reconciler.trigger();
      await reconciler.idle();
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(done(), JSON.stringify(engine.containers().map((c) => [c.name, c.state]))).toBe(true);
  };
  const names = () =>
    engine
      .containers()
      .map((c) => `${c.name} ${c.image === V1 ? 'v1' : c.image === V2 ? 'v2' : 'broken'} ${c.state}`)
      .sort();
  return { engine, events, reconciler, settle, names };
}

describe('a swap in one step', () => {
  it('stops the old version and starts the new one with no observation between, created beforehand; reports each part', async () => {
    const { engine, events, reconciler, settle, names } = agentOnEngine();
    reconciler.setDesired(desired(1, V1));
    await settle(() => events.some((e) => e.type === 'health-passed'));
    engine.log.length = 0;
    events.length = 0;

    reconciler.setDesired(desired(2, V2));
    await settle(() => events.some((e) => e.type === 'health-passed') && names().length === 1);

    const stopAt = engine.log.indexOf('stop web_server');
    const startAt = engine.log.indexOf('start web_server');
    // Between the old one's stop and the new one's start only the renames that hand the name over: no look at the engine, no create.
    expect(engine.log.slice(stopAt, startAt + 1)).toEqual([
      'stop web_server',
      expect.stringMatching(/^rename web_server → web_server\.prev-[0-9a-f]{8}$/),
      expect.stringMatching(/^restart policy of web_server\.prev-[0-9a-f]{8} → no$/),
      expect.stringMatching(/^rename web_server\.new-[0-9a-f]{8} → web_server$/),
      'start web_server',
    ]);
    expect(engine.log[stopAt - 1]).toMatch(/^create web_server\.new-[0-9a-f]{8}$/);
    expect(events.map((e) => e.type)).toEqual(['created', 'stashed', 'started', 'health-passed', 'removed']);
    expect(names()).toEqual(['web_server v2 running']);
  });

  it('a swap cut short after the create: the next ticks remove the new container, swap again, and keep the old one for a rollback', async () => {
    const { engine, events, reconciler, settle, names } = agentOnEngine();
    reconciler.setDesired(desired(1, V1));
    await settle(() => events.some((e) => e.type === 'health-passed'));
    events.length = 0;

    // The first attempt fails as the old version is renamed aside: it was stopped, the new one created beside it.
    engine.failNextRenameTo = 'web_server.prev-';
    reconciler.setDesired(desired(2, V2, { minReadySeconds: 60 }));
    await settle(() => names().some((n) => n.startsWith('web_server v2 running')));

    expect(events.map((e) => e.type)).toEqual(['created', 'stash-failed', 'removed', 'created', 'stashed', 'started']);
    expect(events[1]!.message).toMatch(/engine went away mid-swap/);
    expect(names()).toEqual(['web_server v2 running', expect.stringMatching(/^web_server\.prev-[0-9a-f]{8} v1 exited$/)]);
  });

  it('a new version the engine cannot start fails its gate at once: rolled back, the old one runs again under its name', async () => {
    const { engine, events, reconciler, settle, names } = agentOnEngine();
    reconciler.setDesired(desired(1, V1));
    await settle(() => events.some((e) => e.type === 'health-passed'));
    const [v1] = engine.containers();
    events.length = 0;

    reconciler.setDesired(desired(2, BROKEN, { minReadySeconds: 60 }));
    await settle(() => events.some((e) => e.type === 'restored'));

    expect(events.map((e) => e.type)).toEqual([
      'created',
      'stashed',
      'start-failed',
      'health-failed',
      'rolled-back',
      'removed',
      'restored',
    ]);
    expect(events.find((e) => e.type === 'health-failed')?.message).toBe(
      'container server could not start: exec: "/app": stat /app: no such file or directory',
    );
    expect(names()).toEqual(['web_server v1 running']);
    expect(engine.containers()[0]!.id).toBe(v1!.id);
  });
});
