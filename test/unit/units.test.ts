import { describe, expect, it } from 'vitest';
import { durationText, parseDuration, parseSize, sizeText } from '../../shared/index.js';

describe('parseSize', () => {
  it('reads Docker and Kubernetes units as binary multiples', () => {
    expect(parseSize('512')).toBe(512);
    expect(parseSize('64k')).toBe(64 * 1024);
    expect(parseSize('128m')).toBe(128 * 1024 ** 2);
    expect(parseSize('128MB')).toBe(128 * 1024 ** 2);
    expect(parseSize('64Mi')).toBe(64 * 1024 ** 2);
    expect(parseSize('1.5g')).toBe(1.5 * 1024 ** 3);
  });

  it('rejects what the schema rejects', () => {
    for (const bad of ['', 'm', '12 m', '1t', '-1m']) expect(() => parseSize(bad)).toThrow(/invalid size/);
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m and h', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('1.5m')).toBe(90_000);
    expect(parseDuration('2h')).toBe(7_200_000);
  });

  it('rejects a duration without a unit', () => {
    expect(() => parseDuration('5')).toThrow(/invalid duration/);
  });
});

describe('durationText and sizeText (how the CLI shows a default)', () => {
  it('use the largest unit that reads back exactly', () => {
    expect([604_800_000, 43_200_000, 90_000, 10_000, 250].map(durationText)).toEqual(['7d', '12h', '90s', '10s', '250ms']);
    expect([1024 ** 3, 256 * 1024 ** 2, 1536 * 1024, 65_536, 1000, 0].map(sizeText)).toEqual(['1g', '256m', '1536k', '64k', '1000', '0']);
  });

  it('round-trip through the parsers', () => {
    for (const ms of [1, 999, 1000, 61_000, 3_600_000, 86_400_000 * 3]) expect(parseDuration(durationText(ms))).toBe(ms);
    for (const bytes of [1, 4096, 1024 ** 2 + 1, 5 * 1024 ** 3]) expect(parseSize(sizeText(bytes))).toBe(bytes);
  });
});
