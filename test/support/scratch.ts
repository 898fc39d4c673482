/**
 * Scratch dirs for tests: a fresh dir under the OS temp dir that removes itself
 * when whatever made it is over, so no test writes its own mkdtemp/rm pair.
 *
 * Lifetime follows where `scratchDir` is called:
 * - inside a test or its beforeEach: removed when that test has finished, after
 *   its afterEach hooks (so a hub or agent they stop is gone before its files);
 * - anywhere else (beforeAll, a describe body, module scope): removed after the
 *   test file's last afterAll, so a dir shared by a file's tests lives as long
 *   as they run.
 *
 * Importing this module registers that file-level afterAll: vitest evaluates a
 * test file's imports while collecting it, with the file as the current suite,
 * and re-evaluates them for each file (isolate, the default). After-hooks run
 * in reverse order of registration (sequence.hooks 'stack', the default), and
 * an import registers before the file's own hooks, so the removal comes after
 * every afterAll of the file. Code run outside vitest (bench/) must not import
 * this module.
 *
 * "The current test" is one slot in vitest: tests run with `it.concurrent`
 * would mix up their dirs, so none of the callers runs concurrently.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished, TestRunner } from 'vitest';

const fileDirs = new Set<string>();

afterAll(() => {
  for (const dir of fileDirs) removeScratch(dir);
  fileDirs.clear();
});

/** A new empty dir named `<tmpdir>/<prefix>XXXXXX`, removed when the test (or, outside a test, the file) is over. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (TestRunner.getCurrentTest() === undefined) fileDirs.add(dir);
  else onTestFinished(() => removeScratch(dir));
  return dir;
}

function removeScratch(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
