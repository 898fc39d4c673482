import { describe, expect, it } from 'vitest';
import { appStates } from '../../agent/reconcile/phases.js';
import type { ManagedContainer } from '../../agent/runtime/runtime.js';
import { specHash } from '../../agent/runtime/spec-hash.js';
import type { ContainerSpec, DesiredApp } from '../../shared/index.js';

const web: ContainerSpec = { name: 'web', image: 'reg/web:1' };
const desired: DesiredApp[] = [{ name: 'shop', revision: 4, containers: [web] }];
const idle = { pulling: new Set<string>(), failures: new Map<string, string>(), records: new Map(), health: new Map() };

function container(overrides: Partial<ManagedContainer> = {}): ManagedContainer {
  return {
    id: 'c1',
    dockerName: 'shop_web',
    app: 'shop',
    container: 'web',
    appRevision: 4,
    specHash: specHash(web),
    image: web.image,
    state: 'running',
    status: 'Up',
    restartCount: 0,
    ...overrides,
  };
}

describe('appStates', () => {
  it('is pending before anything exists', () => {
    expect(appStates(desired, [], idle)).toEqual([{ name: 'shop', revision: 4, phase: 'pending', containers: [] }]);
  });

  it('is pulling while the image downloads', () => {
    const [state] = appStates(desired, [], { ...idle, pulling: new Set([web.image]) });
    expect(state).toMatchObject({ phase: 'pulling', message: 'pulling reg/web:1' });
    const progress = (image: string) => (image === web.image ? '12.3 MiB of 48.0 MiB at 250.0 KiB/s' : undefined);
    const [downloading] = appStates(desired, [], { ...idle, pulling: new Set([web.image]), progress });
    expect(downloading).toMatchObject({ phase: 'pulling', message: 'pulling reg/web:1: 12.3 MiB of 48.0 MiB at 250.0 KiB/s' });
  });

  it('is starting while the container is created but not yet running', () => {
    expect(appStates(desired, [container({ state: 'created' })], idle)[0]?.phase).toBe('starting');
  });

  it('is running when every container runs with the desired spec, and reports each container', () => {
    expect(appStates(desired, [container({ restartCount: 2 })], idle)).toEqual([
      {
        name: 'shop',
        revision: 4,
        phase: 'running',
        containers: [{ name: 'web', id: 'c1', image: 'reg/web:1', state: 'running', status: 'Up', restartCount: 2 }],
      },
    ]);
  });

  it('is not running while only an old spec runs', () => {
    expect(appStates(desired, [container({ specHash: 'old' })], idle)[0]?.phase).toBe('pending');
  });

  it('is starting, not failed, while a new version the engine stopped as it went away waits to run again', () => {
    const reason =
      'container web was stopped while the engine went away (after 2026-11-28T10:00:00.000Z); its trial resumes when it runs again';
    const stopped = new Map([['c1', { status: 'pending' as const, reason, stoppedByEngine: true as const }]]);
    const exited = container({ state: 'exited', exitCode: 143 });
    expect(appStates(desired, [exited], { ...idle, health: stopped })[0]).toMatchObject({ phase: 'starting', message: `web: ${reason}` });
    // The same exit with a failed verdict is a failure.
    const failed = new Map([['c1', { status: 'unhealthy' as const, reason: 'container web exited with code 143' }]]);
    expect(appStates(desired, [exited], { ...idle, health: failed })[0]).toMatchObject({ phase: 'failed' });
  });

  it('is failed with the step error', () => {
    const [state] = appStates(desired, [], { ...idle, failures: new Map([['shop', 'pull reg/web:1 failed: manifest unknown']]) });
    expect(state).toMatchObject({ phase: 'failed', message: 'pull reg/web:1 failed: manifest unknown' });
  });

  it('is failed when the container exits or restarts in a loop', () => {
    expect(appStates(desired, [container({ state: 'exited', exitCode: 3 })], idle)[0]).toMatchObject({
      phase: 'failed',
      message: 'container web exited with code 3',
    });
    expect(appStates(desired, [container({ state: 'restarting', exitCode: 1, restartCount: 5 })], idle)[0]).toMatchObject({
      phase: 'failed',
      message: 'container web is restarting (exit code 1, 5 restarts)',
    });
  });

  it('reports apps being removed as stopping, and found apps as they are before any desired state', () => {
    const orphan = container({ app: 'legacy', appRevision: 7 });
    expect(appStates([], [orphan], idle)[0]).toMatchObject({ name: 'legacy', revision: 7, phase: 'stopping' });
    expect(appStates(undefined, [orphan], idle)[0]).toMatchObject({ name: 'legacy', phase: 'running' });
  });

  it('is starting with the health gate reason while a new version is on trial', () => {
    const onTrial = {
      ...idle,
      health: new Map([['c1', { status: 'pending' as const, reason: 'running for 3s of 10s without a restart' }]]),
    };
    expect(appStates(desired, [container()], onTrial)[0]).toMatchObject({
      phase: 'starting',
      message: 'web: running for 3s of 10s without a restart',
    });
  });

  it('is rolled-back with the reason and what runs instead', () => {
    const records = new Map([
      ['shop', { committed: { revision: 3, containers: {} }, rolledBack: { revision: 4, reason: 'container web exited with code 1' } }],
    ]);
    expect(appStates(desired, [container()], { ...idle, records })[0]).toMatchObject({
      phase: 'rolled-back',
      message: 'revision 4 failed its health gate (container web exited with code 1); revision 3 runs again',
    });
  });
});
