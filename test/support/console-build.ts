/**
 * Vitest globalSetup: builds the web console (broker/console/build.mjs) into
 * dist/console/ once per run, before any test file starts, so the browser
 * tests serve this checkout's edits and no two test workers write the bundle
 * at the same time. A failed build does not stop the run: it is handed to the
 * browser tests (expectConsoleBuilt in browser.ts), which fail with esbuild's
 * message, while every other test runs as usual.
 */
import { pathToFileURL } from 'node:url';
import type { TestProject } from 'vitest/node';
import { REPO_ROOT } from './processes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** esbuild's message when the console did not build; '' when it did. */
    consoleBuildError: string;
  }
}

type BuildConsole = (options?: { outDir?: string }) => Promise<string[]>;

export default async function buildConsoleOnce(project: TestProject): Promise<void> {
  const url = pathToFileURL(`${REPO_ROOT}/broker/console/build.mjs`).href;
  try {
    const { buildConsole } = (await import(url)) as { buildConsole: BuildConsole };
    await buildConsole({ outDir: `${REPO_ROOT}/dist/console` });
    project.provide('consoleBuildError', '');
  } catch (err) {
    project.provide('consoleBuildError', (err as Error).message);
  }
}
