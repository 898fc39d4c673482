import { describe, expect, it } from 'vitest';
import { pullStarted, stepFailed, stepSucceeded } from '../../agent/reconcile/step-events.js';

describe('step events', () => {
  it('names what happened, with the reason and, for a pull, how long it took', () => {
    expect(stepSucceeded({ action: 'pull', app: 'shop', container: 'web', image: 'reg/web:2', reason: 'image not present' }, 1234)).toEqual(
      {
        type: 'pulled',
        app: 'shop',
        container: 'web',
        message: 'pull reg/web:2 for shop/web in 1234 ms: image not present',
      },
    );
    expect(
      stepSucceeded({ action: 'rollback', app: 'shop', container: '*', appRevision: 4, reason: 'container web exited with code 1' }, 0),
    ).toEqual({
      type: 'rolled-back',
      app: 'shop',
      message: 'roll back shop from revision 4: container web exited with code 1',
    });
    expect(stepSucceeded({ action: 'remove-image', app: '*', container: '*', image: 'reg/web:1', reason: 'no app needs it' }, 0)).toEqual({
      type: 'image-removed',
      message: 'remove image reg/web:1: no app needs it',
    });
  });

  it('announces a pull before it runs and gives the pulled size when known', () => {
    const pull = { action: 'pull', app: 'shop', container: 'web', image: 'reg/web:2', reason: 'image not present' } as const;
    expect(pullStarted(pull)).toEqual({
      type: 'pull-started',
      app: 'shop',
      container: 'web',
      message: 'pulling reg/web:2: image not present',
    });
    expect(stepSucceeded(pull, 2500, 48 * 1024 * 1024).message).toBe('pull reg/web:2 for shop/web in 2500 ms, 48.0 MiB: image not present');
  });

  it('reports a failed step with the error', () => {
    expect(
      stepFailed(
        { action: 'start', app: 'shop', container: 'web', id: '0123456789abcdef', reason: 'created' },
        new Error('port is already allocated'),
      ),
    ).toEqual({
      type: 'start-failed',
      app: 'shop',
      container: 'web',
      message: 'start shop/web (0123456789ab) failed: port is already allocated',
    });
  });
});
