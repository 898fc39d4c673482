/**
 * Why the hub refuses a job's scheduling (broker/jobs/selection.ts): the ids it does not know, and a
 * selection that matches nothing, each in a sentence whose verb agrees with what the spec names.
 */
import { describe, expect, it } from 'vitest';
import { describeNoMatch, describeUnknown, unknownDevices } from '../../broker/jobs/selection.js';

const HINT = '(flotilla get devices shows their labels)';

describe('a job scheduling the hub refuses', () => {
  it('names every id it does not know, in the order the spec gives them', () => {
    const known = new Set(['gw-1', 'gw-2']);
    expect(unknownDevices({ devices: ['zeta', 'gw-1', 'alpha'] }, known)).toEqual(['zeta', 'alpha']);
    expect(unknownDevices({ devices: ['gw-2'], selectors: { site: 'lab' } }, known)).toEqual([]);
    expect(unknownDevices({ selectors: {} }, known)).toEqual([]);
    expect(describeUnknown(['nosuch'])).toBe('unknown device nosuch: register it first (flotilla token create) or leave it out');
    expect(describeUnknown(['nosuch', 'other'])).toBe(
      'unknown devices nosuch, other: register them first (flotilla token create) or leave them out',
    );
  });

  it('says what matched nothing with a verb that agrees with it', () => {
    expect(describeNoMatch({ selectors: { site: 'moon' } }, 1)).toBe(
      `selector site=moon does not match the one device the hub knows ${HINT}`,
    );
    expect(describeNoMatch({ selectors: { site: 'moon', tier: 'gold' } }, 3)).toBe(
      `selectors site=moon, tier=gold do not match any of the 3 devices the hub knows ${HINT}`,
    );
    expect(describeNoMatch({ devices: ['gw-1'], selectors: { site: 'moon' } }, 3)).toBe(
      `device gw-1 and selector site=moon do not match any of the 3 devices the hub knows ${HINT}`,
    );
    expect(describeNoMatch({ devices: ['gw-1', 'gw-2'], selectors: { site: 'moon' } }, 3)).toBe(
      `devices gw-1, gw-2 and selector site=moon do not match any of the 3 devices the hub knows ${HINT}`,
    );
    expect(describeNoMatch({ devices: [] }, 2)).toBe(`an empty devices list does not match any of the 2 devices the hub knows ${HINT}`);
  });

  it('says so when the hub knows no device at all, and how to register one', () => {
    expect(describeNoMatch({ selectors: {} }, 0)).toBe('the hub knows no device yet (flotilla token create registers one)');
  });
});
