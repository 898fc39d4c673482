/**
 * The order of engine calls inside the steps that take more than one, where
 * an agent killed between two calls must leave something the next plan can finish.
 */
import { describe, expect, it } from 'vitest';
import { enginePulls } from '../../agent/images/image-source.js';
import { type ExecutionContext, execute } from '../../agent/reconcile/executors.js';
import type { RecordWriter } from '../../agent/reconcile/records.js';
import { describeStep } from '../../agent/reconcile/steps.js';
import type { ContainerRuntime } from '../../agent/runtime/runtime.js';
import type { ContainerSpec } from '../../shared/index.js';

/** A runtime that records every call it gets, by method name and arguments. */
function recording(): { runtime: ContainerRuntime; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const runtime = new Proxy({} as ContainerRuntime, {
    get:
      (_target, method) =>
      async (...args: unknown[]) => {
        calls.push([method, ...args]);
        return method === 'create' ? 'c-new' : undefined;
      },
  });
  return { runtime, calls };
}

function context(runtime: ContainerRuntime, parts: string[] = []): ExecutionContext {
  return {
    runtime,
    images: enginePulls(runtime),
    records: {} as RecordWriter,
    deviceId: 'dev-1',
    namePrefix: '',
    signal: new AbortController().signal,
    stopTimeoutSeconds: 10,
    part: async (part, act) => {
      const result = await act();
      parts.push(describeStep(part));
      return result;
    },
  };
}

describe('executors', () => {
  it('stash: stops, renames aside, then takes the restart policy away so the engine cannot start it at its next start', async () => {
    const { runtime, calls } = recording();
    await execute(
      { action: 'stash', app: 'shop', container: 'web', id: 'c1', name: 'shop_web.prev-12345678', reason: 'spec changed' },
      context(runtime),
    );
    expect(calls).toEqual([
      ['stop', 'c1', 10],
      ['rename', 'c1', 'shop_web.prev-12345678'],
      ['setRestartPolicy', 'c1', { name: 'no' }],
    ]);
  });

  it("restore: gives the spec's restart policy back, starts, and only then takes the name (a failed start leaves it aside, to be restored again)", async () => {
    const { runtime, calls } = recording();
    await execute(
      {
        action: 'restore',
        app: 'shop',
        container: 'web',
        id: 'c1',
        name: 'shop_web',
        restartPolicy: { name: 'always' },
        reason: 'rolling back to the previous version',
      },
      context(runtime),
    );
    expect(calls).toEqual([
      ['setRestartPolicy', 'c1', { name: 'always' }],
      ['start', 'c1'],
      ['rename', 'c1', 'shop_web'],
    ]);
  });

  const spec: ContainerSpec = { name: 'web', image: 'reg.local/web:2' };
  const versioned = { app: 'shop', container: 'web', appRevision: 2, specHash: 'h2', spec, reason: 'spec changed' };

  it('run: creates, then starts what it created, reporting each as its own step', async () => {
    const { runtime, calls } = recording();
    const parts: string[] = [];
    await execute({ action: 'run', ...versioned }, context(runtime, parts));
    expect(calls.map(([method]) => method)).toEqual(['create', 'start']);
    expect(calls[1]).toEqual(['start', 'c-new']);
    expect(parts).toEqual(['create shop/web (app revision 2)', 'start shop/web (c-new)']);
  });

  it('swap: creates the new one beside the old one, stashes the old one, and names the new one before starting it', async () => {
    const { runtime, calls } = recording();
    const parts: string[] = [];
    await execute(
      {
        action: 'swap',
        ...versioned,
        id: 'c-old',
        stashName: 'shop_web.prev-11111111',
        incomingName: 'shop_web.new-22222222',
        name: 'shop_web',
      },
      context(runtime, parts),
    );
    expect(
      calls.map(([method, ...args]) => (method === 'create' ? ['create', (args[0] as { name: string }).name] : [method, ...args])),
    ).toEqual([
      ['create', 'shop_web.new-22222222'],
      ['stop', 'c-old', 10],
      ['rename', 'c-old', 'shop_web.prev-11111111'],
      ['setRestartPolicy', 'c-old', { name: 'no' }],
      ['rename', 'c-new', 'shop_web'],
      ['start', 'c-new'],
    ]);
    expect(parts).toEqual([
      'create shop/web (app revision 2)',
      'stash shop/web (c-old as shop_web.prev-11111111)',
      'start shop/web (c-new)',
    ]);
  });
});
