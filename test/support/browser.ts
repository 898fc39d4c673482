/**
 * A real browser for the console tests: Debian's Chromium driven by
 * playwright-core. One browser per test file (launching costs a second or
 * more on two cores), a fresh context per test (its own session storage, so
 * no login leaks from one test into the next).
 *
 * Every page is watched: console errors and warnings, requests that failed
 * and responses with a 4xx/5xx status are recorded, and `expectClean()`
 * fails the test on any of them except what the test allowed because it
 * provokes them on purpose (the 403 of a forged request, the 422 of a bad spec).
 *
 * Locally, without Chromium, the tests skip saying how to enable them; with
 * CI=true a missing browser is a failure, never a silent skip (as the Docker
 * e2e tests treat their engine).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { describe, inject } from 'vitest';
import { CHROMIUM } from './chromium.js';
import { REPO_ROOT } from './processes.js';

export { CHROMIUM, launchBrowser } from './chromium.js';

/** Where screenshots go: CI keeps this folder as the run's artifact. */
export const SCREENSHOT_DIR = join(REPO_ROOT, 'test-output/console');

export const browserProblem = existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM}`;

if (browserProblem && process.env.CI === 'true') {
  throw new Error(`the browser tests require Chromium in CI: ${browserProblem}`);
}
if (browserProblem) {
  console.warn(
    `[browser] skipping browser tests: ${browserProblem}. To run them: apt-get install chromium (or set FLOTILLA_TEST_CHROMIUM).`,
  );
}

/** Browser tests drive real pages against real hubs and agents: seconds per step on a loaded two-core machine. */
const BROWSER_TEST_TIMEOUT_MS = 120_000;

/** `describe` that runs only where Chromium is installed, with browser-sized test timeouts. */
export function describeBrowser(name: string, body: () => void): void {
  if (browserProblem) describe.skip(name, body);
  else describe(name, { timeout: BROWSER_TEST_TIMEOUT_MS }, body);
}

/**
 * The console bundle is built once per run (test/support/console-build.ts, a
 * vitest globalSetup) so the tests see this checkout's edits; a build that
 * failed fails the browser tests only, with esbuild's message.
 */
export function expectConsoleBuilt(): void {
  const failure = inject('consoleBuildError');
  if (failure) throw new Error(`the console did not build: ${failure}`);
}

export interface Viewport {
  width: number;
  height: number;
}

export const DESKTOP: Viewport = { width: 1280, height: 800 };
export const PHONE: Viewport = { width: 390, height: 844 };

/** How far the page itself scrolls sideways, in CSS pixels: 0 or less when everything fits the viewport's width. */
export async function sidewaysOverflowPx(page: Page): Promise<number> {
  return (await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
}

export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** Everything that went wrong on the page so far, one line each. */
  problems(): string[];
  /** Problems whose line matches `pattern` are expected (the test provokes them) and not counted by expectClean. */
  allow(pattern: RegExp): void;
  /** Throws listing the problems that were not allowed. */
  expectClean(): void;
  /** A full-page PNG at test-output/console/NAME.png; returns its path. */
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * A new context and page on `browser`, watched. `baseURL` lets tests `goto('/#/apps')`.
 * A follow stream (`?follow=true`) the page aborts itself, as a view unmounts or
 * the page navigates away, is not a failure; every other failed request is.
 */
export async function openPage(
  browser: Browser,
  { baseURL, viewport = DESKTOP }: { baseURL: string; viewport?: Viewport },
): Promise<WatchedPage> {
  const context = await browser.newContext({ baseURL, viewport });
  const page = await context.newPage();
  const seen: string[] = [];
  const allowed: RegExp[] = [];
  page.on('console', (message) => {
    const type = message.type();
    if (type === 'error' || type === 'warning') seen.push(`console ${type}: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => seen.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    const reason = request.failure()?.errorText ?? 'failed';
    if (reason === 'net::ERR_ABORTED' && request.url().includes('follow=true')) return;
    seen.push(`request failed: ${request.method()} ${request.url()} ${reason}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) seen.push(`response ${response.status()}: ${response.request().method()} ${response.url()}`);
  });
  const unexpected = () => seen.filter((line) => !allowed.some((pattern) => pattern.test(line)));
  return {
    page,
    context,
    problems: () => [...seen],
    allow: (pattern) => allowed.push(pattern),
    expectClean() {
      const left = unexpected();
      if (left.length > 0) throw new Error(`the page had ${left.length} problem(s):\n${left.join('\n')}`);
    },
    async screenshot(name) {
      mkdirSync(SCREENSHOT_DIR, { recursive: true });
      const path = join(SCREENSHOT_DIR, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    close: () => context.close(),
  };
}

/** Logs in through the form with `key` and waits for the header naming who logged in. */
export async function logIn(page: Page, key: string, expectWho: RegExp): Promise<void> {
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText(expectWho).waitFor({ timeout: 15_000 });
}
