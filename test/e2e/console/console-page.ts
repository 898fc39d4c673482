/**
 * The console as the browser tests drive it: a page opened at a route and
 * logged in through the form as a user would, and the fleet table read the
 * way an operator reads it (rows by device id, each with its status).
 */
import type { Page } from 'playwright-core';
import { logIn, type Viewport, type WatchedPage } from '../../support/browser.js';
import type { BrowserSuite } from '../../support/browser-suite.js';
import type { ConsoleHub } from './fixture.js';

export interface ConsoleLogin {
  /** Where the page opens; the login form shows there and the route follows once logged in. */
  path?: string;
  /** The API key typed into the form: the hub's admin key unless given. */
  key?: string;
  /** The header naming who logged in (`NAME · ROLE`), waited for. */
  who?: RegExp;
  viewport?: Viewport;
}

/** A watched page on the console of `hub`, logged in, closed after the test. */
export async function openConsole(suite: BrowserSuite, hub: ConsoleHub, login: ConsoleLogin = {}): Promise<WatchedPage> {
  const watched = await suite.open(hub.hub.httpUrl, login.viewport);
  await watched.page.goto(login.path ?? '/');
  await logIn(watched.page, login.key ?? hub.adminKey, login.who ?? /admin · admin/);
  return watched;
}

/** The fleet table's row of `id`. */
export function deviceRow(page: Page, id: string) {
  return page.getByRole('table', { name: 'Devices' }).locator(`tr[data-device="${id}"]`);
}

/** The status badge of `id`'s row when it reads `status`: wait for it, or count it. */
export function deviceStatus(page: Page, id: string, status: 'online' | 'offline') {
  return deviceRow(page, id).getByText(status, { exact: true });
}

/** Ids of the devices the fleet table shows, in its order. */
export async function shownDevices(page: Page): Promise<string[]> {
  const rows = page.getByRole('table', { name: 'Devices' }).locator('tr[data-device]');
  return (await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-device') ?? ''))).filter((id) => id !== '');
}
