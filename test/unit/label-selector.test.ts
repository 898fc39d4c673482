import { describe, expect, it } from 'vitest';
import { LabelSelectorError, matchesLabelSelector, parseLabelSelector } from '../../shared/label-selector.js';

const devices: Record<string, Record<string, string>> = {
  roof1: { site: 'roof', arch: 'arm64', gpu: 'yes' },
  roof2: { site: 'roof', arch: 'amd64' },
  yard1: { site: 'yard', arch: 'arm64' },
  bare: {},
  zoned: { 'example.com/zone': 'eu-1', site: '' },
};

/** The ids of the devices above that `text` selects, in order. */
function select(text: string): string[] {
  const selector = parseLabelSelector(text);
  return Object.entries(devices)
    .filter(([, labels]) => matchesLabelSelector(selector, labels))
    .map(([id]) => id);
}

function errorOf(text: string): LabelSelectorError {
  try {
    parseLabelSelector(text);
  } catch (err) {
    if (err instanceof LabelSelectorError) return err;
    throw err;
  }
  throw new Error(`"${text}" parsed`);
}

describe('label selectors, as kubectl writes them', () => {
  it('selects everything when empty or blank', () => {
    expect(select('')).toEqual(['roof1', 'roof2', 'yard1', 'bare', 'zoned']);
    expect(select('   ')).toEqual(['roof1', 'roof2', 'yard1', 'bare', 'zoned']);
  });

  it('reads = and == as equality', () => {
    expect(select('site=roof')).toEqual(['roof1', 'roof2']);
    expect(select('site==yard')).toEqual(['yard1']);
  });

  it('reads != as "not this value", which a device without the label meets', () => {
    expect(select('site!=roof')).toEqual(['yard1', 'bare', 'zoned']);
  });

  it('reads a bare key as "has the label" and !key as "has not"', () => {
    expect(select('gpu')).toEqual(['roof1']);
    expect(select('!gpu')).toEqual(['roof2', 'yard1', 'bare', 'zoned']);
    expect(select('! site')).toEqual(['bare']);
  });

  it('reads in and notin with a value list; notin is met by a device without the label', () => {
    expect(select('site in (roof, yard)')).toEqual(['roof1', 'roof2', 'yard1']);
    expect(select('arch notin (arm64)')).toEqual(['roof2', 'bare', 'zoned']);
    expect(select('site in(yard)')).toEqual(['yard1']);
  });

  it('ands requirements joined by commas, with spaces anywhere between tokens', () => {
    expect(select('site=roof,arch=arm64')).toEqual(['roof1']);
    expect(select(' site = roof , !gpu ')).toEqual(['roof2']);
    expect(select('arch in (arm64,amd64),site notin (yard),gpu')).toEqual(['roof1']);
  });

  it('takes prefixed keys and an empty value, which a label can have', () => {
    expect(select('example.com/zone=eu-1')).toEqual(['zoned']);
    expect(select('site=')).toEqual(['zoned']);
    expect(select('site=,example.com/zone')).toEqual(['zoned']);
  });

  it('keeps the parsed shape: = becomes in with one value, != notin', () => {
    expect(parseLabelSelector('a=1, b!=2, c, !d, e in (x, y, x)')).toEqual([
      { key: 'a', op: 'in', values: ['1'] },
      { key: 'b', op: 'notin', values: ['2'] },
      { key: 'c', op: 'exists' },
      { key: 'd', op: 'not-exists' },
      { key: 'e', op: 'in', values: ['x', 'y'] },
    ]);
  });

  it('refuses bad syntax saying what it expected and where', () => {
    const cases: [string, string, number][] = [
      ['site=roof,', 'expected a label key, found the end', 11],
      [',site', 'expected a label key, found ","', 1],
      ['site roof', 'expected "=", "==", "!=", "in", "notin", "," or the end after "site", found "roof"', 6],
      ['site=roof top', 'expected "," or the end, found "top"', 11],
      ['site in roof', 'expected "(" after "site in", found "roof"', 9],
      ['site in (roof', 'expected "," or ")" in the list of "site in", found the end', 14],
      ['site in ()', 'expected a value in the list of "site in", found ")"', 10],
      ['site notin (a,,b)', 'expected a value in the list of "site notin", found ","', 15],
      ['!site=roof', 'expected "," or the end, found "="', 6],
      ['=roof', 'expected a label key, found "="', 1],
      ['Site$=1', 'invalid label key "Site$"', 1],
      ['site!roof', 'expected "=", "==", "!=", "in", "notin", "," or the end after "site", found "!"', 5],
      ['bad_key_=1', 'invalid label key "bad_key_"', 1],
      ['site=-roof', 'invalid label value "-roof"', 6],
      [`k=${'v'.repeat(64)}`, `invalid label value "${'v'.repeat(64)}"`, 3],
    ];
    for (const [text, message, column] of cases) {
      const error = errorOf(text);
      expect({ text, message: error.message, column: error.column }).toEqual({
        text,
        message: `${message} (column ${column})`,
        column,
      });
    }
  });
});
