/**
 * What the issue asks of every view beyond its content, measured in Chromium
 * against a hub that requires keys and registered simulated devices: the
 * fleet is operable from the keyboard with a visible focus, every form
 * control across the views has a label, every main view fits a phone's
 * width, and live data arriving (metrics
 * every second, labels changed, a device going offline) shifts no layout
 * (the browser's own layout-shift entries, as Core Web Vitals count them).
 */
import { expect, it } from 'vitest';
import { describeBrowser, logIn, PHONE, sidewaysOverflowPx } from '../../support/browser.js';
import { useBrowser } from '../../support/browser-suite.js';
import { deviceRow, deviceStatus, openConsole } from './console-page.js';
import { startConsoleHub, startSimDevice } from './fixture.js';

/** Sums layout shifts not caused by input, from the page's first paint on (installed before any script runs). */
const RECORD_LAYOUT_SHIFTS = `
  window.layoutShift = { total: 0, entries: [] };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.hadRecentInput) continue;
      window.layoutShift.total += entry.value;
      window.layoutShift.entries.push({ value: entry.value, at: Math.round(entry.startTime),
        nodes: (entry.sources || []).map((s) => s.node ? (s.node.id || s.node.className || s.node.nodeName) : '?') });
    }
  }).observe({ type: 'layout-shift', buffered: true });
`;

/** The focused element: its tag, accessible text, and whether its focus ring is drawn. */
const FOCUSED = `(() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none';
  return { tag: el.tagName.toLowerCase(), text: (el.getAttribute('aria-label') || el.textContent || el.id || '').trim().slice(0, 60), ring };
})()`;

/** Visible form controls without a label (a <label>, aria-label or aria-labelledby). */
const UNLABELLED = `[...document.querySelectorAll('input, select, textarea')]
  .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0)
  .filter((el) => el.labels.length === 0 && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map((el) => el.outerHTML.slice(0, 120))`;

describeBrowser('web console: keyboard, labels and layout', () => {
  const suite = useBrowser({ servesConsole: true });
  const { cleanup } = suite;

  it('walks the fleet from the keyboard with a visible focus, and opens a device with Enter', async () => {
    const hub = await startConsoleHub(cleanup);
    const { id } = await startSimDevice(cleanup, hub, 'kiosk', { labels: { site: 'hall' } });
    const watched = await openConsole(suite, hub);
    const { page } = watched;
    await deviceStatus(page, id, 'online').waitFor({ timeout: 15_000 });

    // Tab from the top of the page until the device's link has the focus; every stop on the way shows it.
    await page.evaluate('document.activeElement && document.activeElement.blur()');
    const stops: { tag: string; text: string; ring: boolean }[] = [];
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      const focused = (await page.evaluate(FOCUSED)) as { tag: string; text: string; ring: boolean } | null;
      if (!focused) continue;
      stops.push(focused);
      if (focused.tag === 'a' && focused.text === id) break;
    }
    const names = stops.map((s) => s.text);
    expect(names, JSON.stringify(names)).toContain(id);
    expect(names, 'the header navigation').toContain('Apps');
    expect(
      stops.some((s) => s.tag === 'input'),
      'the filters',
    ).toBe(true);
    expect(
      stops.some((s) => s.tag === 'button' && s.text.startsWith('Device')),
      'a sort button',
    ).toBe(true);
    const withoutRing = stops.filter((s) => !s.ring);
    expect(withoutRing, 'stops without a visible focus').toEqual([]);

    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`#/devices/${id}$`));
    await page.getByRole('heading', { level: 1, name: id }).waitFor();
    watched.expectClean();
  });

  it('labels every form control on the fleet, device, editor and admin pages', async () => {
    const hub = await startConsoleHub(cleanup);
    const { id } = await startSimDevice(cleanup, hub, 'kiosk', { labels: { site: 'hall' } });
    // Opened and logged in by hand: the login form is one of the pages checked.
    const watched = await suite.open(hub.hub.httpUrl);
    const { page } = watched;
    await page.goto('/');
    expect(await page.evaluate(UNLABELLED), 'the login form').toEqual([]);
    await logIn(page, hub.adminKey, /admin · admin/);
    const views: [string, () => Promise<unknown>][] = [
      ['#/', () => deviceRow(page, id).waitFor()],
      [`#/devices/${id}/logs`, () => page.getByLabel('Search').waitFor()],
      [`#/devices/${id}/terminal`, () => page.getByRole('button', { name: 'Open shell' }).waitFor()],
      ['#/apply', () => page.getByLabel('Spec (YAML)').waitFor()],
      ['#/admin/tokens', () => page.getByRole('button', { name: 'Create token' }).waitFor()],
      ['#/admin/serviceaccounts', () => page.getByRole('button', { name: 'Create account' }).waitFor()],
      ['#/admin/secrets', () => page.getByRole('button', { name: 'Set secret' }).waitFor()],
      ['#/events', () => page.getByRole('table', { name: 'Events' }).waitFor()],
    ];
    for (const [path, ready] of views) {
      await page.goto(`/${path}`);
      await ready();
      expect(await page.evaluate(UNLABELLED), path).toEqual([]);
    }
    watched.expectClean();
  });

  it('fits every main view into a phone’s width: wide tables scroll in their own box, never the page', async () => {
    const hub = await startConsoleHub(cleanup);
    const { id } = await startSimDevice(cleanup, hub, 'kiosk', { labels: { site: 'hall' }, metricsIntervalSeconds: 1 });
    const spec = {
      name: 'signage',
      scheduling: { selectors: { site: 'hall' } },
      spec: { containers: [{ name: 'screen', image: 'registry.local/signage:1' }], update: { minReadySeconds: 0 } },
    };
    expect((await hub.api('POST', '/api/v1/apps', spec)).status).toBe(200);
    const watched = await openConsole(suite, hub, { viewport: PHONE });
    const { page } = watched;
    const views: [string, string, () => Promise<unknown>][] = [
      ['device', `#/devices/${id}`, () => page.getByRole('heading', { level: 1, name: id }).waitFor()],
      ['device-metrics', `#/devices/${id}/metrics`, () => page.locator('figure[data-chart="cpu"]').waitFor()],
      ['apps', '#/apps', () => page.locator('tr[data-app="signage"]').waitFor()],
      ['app-revisions', '#/apps/signage/revisions', () => page.getByRole('table', { name: 'Revisions' }).waitFor()],
      ['editor', '#/apply', () => page.getByLabel('Spec (YAML)').waitFor()],
      ['admin', '#/admin/tokens', () => page.getByRole('button', { name: 'Create token' }).waitFor()],
      ['events', '#/events', () => page.getByRole('table', { name: 'Events' }).waitFor()],
    ];
    const overflowing: string[] = [];
    for (const [name, path, ready] of views) {
      await page.goto(`/${path}`);
      await ready();
      const overflow = await sidewaysOverflowPx(page);
      if (overflow > 0) overflowing.push(`${path} by ${overflow}px`);
      await watched.screenshot(`${name}-phone`);
    }
    expect(overflowing).toEqual([]);
    watched.expectClean();
  });

  it('shifts no layout on the fleet page as metrics, labels and a device going offline arrive', async () => {
    const hub = await startConsoleHub(cleanup);
    const devices = [];
    for (const name of ['boiler', 'chiller', 'pump']) {
      devices.push(
        await startSimDevice(cleanup, hub, name, {
          labels: { site: 'hall' },
          metricsIntervalSeconds: 1,
          proxied: true,
          keepaliveSeconds: 2,
        }),
      );
    }
    const watched = await openConsole(suite, hub);
    const { page } = watched;
    for (const { id } of devices) await deviceStatus(page, id, 'online').waitFor({ timeout: 15_000 });
    // From here on only live data changes the page: the first render's own shifts do not count.
    await page.evaluate(RECORD_LAYOUT_SHIFTS);
    await page.waitForTimeout(500);
    await page.evaluate('window.layoutShift = { total: 0, entries: [] }');

    const [first, second] = devices;
    const labelled = await hub.api('PATCH', `/api/v1/devices/${first!.id}/labels`, { set: { zone: 'north-east-wing', floor: '3' } });
    expect(labelled.status, JSON.stringify(labelled.body)).toBe(200);
    await deviceRow(page, first!.id).getByText('zone=north-east-wing').waitFor({ timeout: 10_000 });
    second!.proxy?.stall();
    await deviceStatus(page, second!.id, 'offline').waitFor({ timeout: 15_000 });
    // A few more metrics samples of the devices still online.
    await page.waitForTimeout(3_000);

    const shift = (await page.evaluate('window.layoutShift')) as { total: number; entries: unknown[] };
    // Chromium's "good" cumulative layout shift is under 0.1; a table whose columns jump as values change scores far above.
    expect(shift.total, JSON.stringify(shift.entries)).toBeLessThan(0.01);
    await watched.screenshot('fleet-live');
    watched.expectClean();
  });
});
