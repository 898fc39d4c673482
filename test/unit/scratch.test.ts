import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { scratchDir } from '../support/scratch.js';

describe('scratchDir', () => {
  let fromBeforeAll: string;
  let fromBeforeEach: string;
  let fromTest: string;
  const fromBeforeEachSeen: string[] = [];

  beforeAll(() => {
    fromBeforeAll = scratchDir('flotilla-scratch-all-');
  });
  beforeEach(() => {
    fromBeforeEach = scratchDir('flotilla-scratch-each-');
    fromBeforeEachSeen.push(fromBeforeEach);
  });
  afterEach(() => {
    // afterEach hooks still see the dirs of their test: they may stop what writes there.
    expect(existsSync(fromBeforeEach)).toBe(true);
  });
  afterAll(() => {
    expect(existsSync(fromBeforeAll)).toBe(true);
  });

  it('makes an empty, writable dir under the OS temp dir, named by the prefix', () => {
    fromTest = scratchDir('flotilla-scratch-test-');
    expect(dirname(fromTest)).toBe(tmpdir());
    expect(fromTest).toMatch(/flotilla-scratch-test-\w{6}$/);
    writeFileSync(join(fromTest, 'file'), 'x');
    expect(existsSync(join(fromTest, 'file'))).toBe(true);
    expect(scratchDir('flotilla-scratch-test-')).not.toBe(fromTest);
  });

  it('removes the dirs of a finished test, and keeps the ones made in beforeAll', () => {
    expect(existsSync(fromTest)).toBe(false);
    expect(fromBeforeEachSeen).toHaveLength(2);
    expect(existsSync(fromBeforeEachSeen[0] as string)).toBe(false);
    expect(existsSync(fromBeforeEach)).toBe(true);
    expect(existsSync(fromBeforeAll)).toBe(true);
  });
});
