import { describe, expect, it } from 'vitest';
import { parseDuration, parseSize } from '../../shared/index.js';

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
