import { describe, expect, it } from 'vitest';
import { rolloutActions, rolloutStages } from '../../broker/console/web/apps/rollout-stages.js';
import type { RolloutDeviceState, RolloutDeviceView } from '../../shared/api/results.js';

const device = (id: string, canary: boolean, state: RolloutDeviceState): RolloutDeviceView => ({
  id,
  canary,
  state,
  revision: 2,
  since: '2026-01-01T00:00:00.000Z',
});

describe('rolloutStages', () => {
  it('counts healthy of all in the canary and in the rest, and the failed or reverted beside them', () => {
    const stages = rolloutStages([
      device('a', true, 'healthy'),
      device('b', true, 'updating'),
      device('c', false, 'healthy'),
      device('d', false, 'failed'),
      device('e', false, 'reverted'),
      device('f', false, 'pending'),
    ]);
    expect(stages).toEqual({ canary: { healthy: 1, total: 2, failed: 0 }, rest: { healthy: 1, total: 4, failed: 2 } });
  });

  it('is empty stages for a rollout without devices or without a canary', () => {
    expect(rolloutStages([device('a', false, 'healthy')]).canary).toEqual({ healthy: 0, total: 0, failed: 0 });
  });
});

describe('rolloutActions', () => {
  it('offers pause while progressing, resume while paused, abort until finished, roll back when there is an earlier revision', () => {
    expect(rolloutActions('progressing', 1)).toEqual(['pause', 'abort', 'rollback']);
    expect(rolloutActions('paused', 3)).toEqual(['resume', 'abort', 'rollback']);
    expect(rolloutActions('complete', 1)).toEqual(['rollback']);
    expect(rolloutActions('aborted', 2)).toEqual(['rollback']);
    expect(rolloutActions('complete', 0)).toEqual([]);
  });
});
