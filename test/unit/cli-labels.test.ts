import { describe, expect, it } from 'vitest';
import { UsageError } from '../../cli/errors.js';
import { parseLabelArgs, parseLabelAssignments } from '../../cli/labels.js';

describe('parseLabelArgs', () => {
  it('reads key=value as a set and key- as a removal, kubectl style', () => {
    expect(parseLabelArgs(['site=roof', 'tier-', 'example.com/zone=eu-1'])).toEqual({
      set: { site: 'roof', 'example.com/zone': 'eu-1' },
      remove: ['tier'],
    });
  });

  it('allows an empty value and keys with dashes inside', () => {
    expect(parseLabelArgs(['gpu=', 'my-key=a_b.c'])).toEqual({ set: { gpu: '', 'my-key': 'a_b.c' }, remove: [] });
    expect(parseLabelArgs(['my-key-'])).toEqual({ set: {}, remove: ['my-key'] });
  });

  it('keeps everything after the first "=" as the value, so "a=b=c" is refused by the value rule', () => {
    expect(() => parseLabelArgs(['a=b=c'])).toThrow('invalid label value "b=c" for key "a"');
  });

  it('refuses malformed arguments with an exit-2 error', () => {
    const cases: [string, RegExp][] = [
      ['site', /invalid label argument "site": expected key=value to set or key- to remove/],
      ['-', /invalid label argument "-"/],
      ['=roof', /invalid label key ""/],
      ['Site!=roof', /invalid label key "Site!"/],
      ['site=roof top', /invalid label value "roof top"/],
      ['site=-roof', /invalid label value "-roof"/],
      ['bad key-', /invalid label key "bad key" in "bad key-"/],
      [`${'k'.repeat(64)}=v`, /invalid label key/],
      [`k=${'v'.repeat(64)}`, /invalid label value/],
    ];
    for (const [arg, message] of cases) {
      let thrown: unknown;
      try {
        parseLabelArgs([arg]);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, arg).toBeInstanceOf(UsageError);
      expect((thrown as UsageError).exitCode).toBe(2);
      expect((thrown as Error).message, arg).toMatch(message);
    }
  });

  it('refuses nothing to do, and the same key twice', () => {
    expect(() => parseLabelArgs([])).toThrow(/no labels given/);
    expect(() => parseLabelArgs(['a=1', 'a=2'])).toThrow('label "a" is given more than once');
    expect(() => parseLabelArgs(['a=1', 'a-'])).toThrow('label "a" is given more than once');
  });
});

describe('parseLabelAssignments', () => {
  it('reads --label k=v options into a record', () => {
    expect(parseLabelAssignments([])).toEqual({});
    expect(parseLabelAssignments(['site=roof', 'arch=arm64'])).toEqual({ site: 'roof', arch: 'arm64' });
  });

  it('refuses removals, bad labels and repeats', () => {
    expect(() => parseLabelAssignments(['site-'])).toThrow('invalid label "site-": expected key=value');
    expect(() => parseLabelAssignments(['Site!=x'])).toThrow(/invalid label key/);
    expect(() => parseLabelAssignments(['a=1', 'a=1'])).toThrow('label "a" is given more than once');
    // "constructor" is a valid key and must not collide with Object.prototype.
    expect(parseLabelAssignments(['constructor=x'])).toEqual({ constructor: 'x' });
  });
});
