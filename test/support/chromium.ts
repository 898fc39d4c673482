/**
 * Debian's Chromium (`apt-get install chromium`) launched headless through
 * playwright-core, for the browser tests (browser.ts) and bench/console.ts.
 * Needs no test runner.
 */
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.FLOTILLA_TEST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Without the background-networking flags Chromium spends its first seconds
 * calling home (updates, sync, field trials), which on a closed network is a
 * flood of refused connections. No sandbox: the tests run as root.
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A fresh browser with a fresh (temporary) profile; close() removes it. */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 60_000 });
}
