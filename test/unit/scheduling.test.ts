import { describe, expect, it } from 'vitest';
import { desiredAppsFor, desiredHash, MissingSecretError, matches } from '../../broker/dispatcher/scheduling.js';
import type { AppSpec } from '../../shared/index.js';

const spec = (
  name: string,
  scheduling: AppSpec['scheduling'],
  env: NonNullable<AppSpec['spec']['containers'][number]['env']> = [],
): AppSpec => ({
  name,
  scheduling,
  spec: { containers: [{ name: 'main', image: `reg/${name}:1`, env }] },
});

describe('matches', () => {
  it('requires every selector to equal the device label', () => {
    expect(matches({ selectors: { site: 'roof', arch: 'arm64' } }, 'd1', { site: 'roof', arch: 'arm64', extra: 'x' })).toBe(true);
    expect(matches({ selectors: { site: 'roof', arch: 'arm64' } }, 'd1', { site: 'roof', arch: 'amd64' })).toBe(false);
    expect(matches({ selectors: { site: 'roof' } }, 'd1', {})).toBe(false);
  });

  it('treats empty selectors as every device', () => {
    expect(matches({ selectors: {} }, 'anything', {})).toBe(true);
  });

  it('selects an explicit device list by id', () => {
    expect(matches({ devices: ['d1', 'd2'] }, 'd2', {})).toBe(true);
    expect(matches({ devices: ['d1', 'd2'] }, 'd3', {})).toBe(false);
  });

  it('needs both when a device list and selectors are given', () => {
    expect(matches({ devices: ['d1'], selectors: { site: 'roof' } }, 'd1', { site: 'roof' })).toBe(true);
    expect(matches({ devices: ['d1'], selectors: { site: 'roof' } }, 'd1', { site: 'cellar' })).toBe(false);
  });
});

describe('desiredAppsFor', () => {
  const apps = [
    { name: 'zeta', revision: 2, spec: spec('zeta', { selectors: {} }) },
    { name: 'alpha', revision: 5, spec: spec('alpha', { selectors: { site: 'roof' } }) },
    { name: 'cellar', revision: 1, spec: spec('cellar', { selectors: { site: 'cellar' } }) },
  ];

  it('lists the matching apps sorted by name with their revisions', () => {
    const desired = desiredAppsFor('d1', { site: 'roof' }, apps, () => undefined);
    expect(desired.map((a) => `${a.name}@${a.revision}`)).toEqual(['alpha@5', 'zeta@2']);
  });

  it('resolves secrets into values', () => {
    const withSecret = [{ name: 'a', revision: 1, spec: spec('a', { selectors: {} }, [{ name: 'TOKEN', fromSecret: 'tok' }]) }];
    const [app] = desiredAppsFor('d1', {}, withSecret, (n) => (n === 'tok' ? Buffer.from('xyz') : undefined));
    expect(app?.containers[0]?.env).toEqual([{ name: 'TOKEN', value: 'xyz' }]);
  });

  it('names the field of a missing secret', () => {
    const withSecret = [{ name: 'a', revision: 1, spec: spec('a', { selectors: {} }, [{ name: 'TOKEN', fromSecret: 'nope' }]) }];
    expect(() => desiredAppsFor('d1', {}, withSecret, () => undefined)).toThrow(MissingSecretError);
    try {
      desiredAppsFor('d1', {}, withSecret, () => undefined);
    } catch (err) {
      expect((err as MissingSecretError).path).toBe('spec.containers[0].env[0].fromSecret');
    }
  });

  it('hashes to the same value regardless of app order, and differently when a revision changes', () => {
    const a = desiredAppsFor('d1', { site: 'roof' }, apps, () => undefined);
    const b = desiredAppsFor('d1', { site: 'roof' }, [...apps].reverse(), () => undefined);
    expect(desiredHash(a)).toBe(desiredHash(b));
    const bumped = desiredAppsFor(
      'd1',
      { site: 'roof' },
      apps.map((x) => (x.name === 'alpha' ? { ...x, revision: 6 } : x)),
      () => undefined,
    );
    expect(desiredHash(bumped)).not.toBe(desiredHash(a));
  });
});
