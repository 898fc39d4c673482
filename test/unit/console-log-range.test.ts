/**
 * What the console's Logs tab asks the hub for from its Since, Until and App
 * boxes: a start, an end or both, and the newest lines (before the end) when
 * there is no start.
 */
import { describe, expect, it } from 'vitest';
import { logRangeParams, sinceParam } from '../../broker/console/web/device/log-buffer.js';

describe('logRangeParams', () => {
  it('asks for the newest lines when no box is filled', () => {
    expect(logRangeParams({ since: '', until: '', app: '' }, 500)).toEqual({ tail: 500 });
  });

  it('sends a start alone without a tail, so the whole window comes back', () => {
    expect(logRangeParams({ since: '2h', until: '', app: 'web' }, 500)).toEqual({ since: '2h', app: 'web' });
  });

  it('sends both ends of a closed window', () => {
    expect(logRangeParams({ since: '2h', until: '1h', app: '' }, 500)).toEqual({ since: '2h', until: '1h' });
  });

  it('with an end and no start, the newest lines before the end', () => {
    expect(logRangeParams({ since: '', until: '1h', app: '' }, 500)).toEqual({ tail: 500, until: '1h' });
  });

  it('sends an Until typed as a local date and time as the RFC 3339 instant it means', () => {
    const until = sinceParam('2026-01-31 09:00');
    expect(until).toBe(new Date(2026, 0, 31, 9, 0).toISOString());
    expect(logRangeParams({ since: '', until: until ?? 'unparsed', app: '' }, 100)).toEqual({ tail: 100, until });
  });
});
