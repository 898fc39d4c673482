import { describe, expect, it } from 'vitest';
import { stepFailed, stepSucceeded } from '../../agent/reconcile/step-events.js';

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
