/**
 * The order of engine calls inside the steps that take more than one, where
 * an agent killed between two calls must leave something the next plan can finish.
 */
import { describe, expect, it } from 'vitest';
import { type ExecutionContext, execute } from '../../agent/reconcile/executors.js';
import type { RecordWriter } from '../../agent/reconcile/records.js';
import type { ContainerRuntime } from '../../agent/runtime/runtime.js';

/** A runtime that records every call it gets, by method name and arguments. */
function recording(): { runtime: ContainerRuntime; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const runtime = new Proxy({} as ContainerRuntime, {
    get:
      (_target, method) =>
      async (...args: unknown[]) => {
        calls.push([method, ...args]);
      },
  });
  return { runtime, calls };
}

function context(runtime: ContainerRuntime): ExecutionContext {
  return {
    runtime,
    records: {} as RecordWriter,
    deviceId: 'dev-1',
    namePrefix: '',
    signal: new AbortController().signal,
    stopTimeoutSeconds: 10,
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
});
