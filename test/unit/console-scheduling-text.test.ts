import { describe, expect, it } from 'vitest';
import { formatScheduling } from '../../broker/console/web/apps/scheduling-text.js';

describe('formatScheduling', () => {
  it('writes scheduling as `flotilla get apps` does', () => {
    expect(formatScheduling({ selectors: { site: 'roof', arch: 'arm64' } })).toBe('arch=arm64,site=roof');
    expect(formatScheduling({ devices: ['d1', 'd2'] })).toBe('devices: d1,d2');
    expect(formatScheduling({ selectors: {} })).toBe('<all>');
    expect(formatScheduling({ devices: ['d1'], selectors: {} })).toBe('devices: d1');
    expect(formatScheduling({ devices: ['d1'], selectors: { site: 'lab' } })).toBe('devices: d1; site=lab');
  });
});
