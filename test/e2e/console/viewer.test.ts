/**
 * A viewer in the console, in Chromium against a hub that requires keys: it
 * sees the fleet, the apps and a device but is offered no control that
 * changes anything, and the hub refuses a request forged from its page
 * anyway. (What an admin does is admin.test.ts.)
 */
import { expect, it } from 'vitest';
import { createAccount } from '../../support/auth.js';
import { describeBrowser } from '../../support/browser.js';
import { useBrowser } from '../../support/browser-suite.js';
import { waitFor } from '../../support/wait.js';
import { deviceRow, openConsole } from './console-page.js';
import { type ConsoleHub, startConsoleHub, startSimDevice } from './fixture.js';

const APP = 'meter';

describeBrowser('web console: a viewer', () => {
  const suite = useBrowser({ servesConsole: true });
  const { cleanup } = suite;

  /**
   * A hub with two devices and an app whose second revision's rollout waits
   * after its canary: a page where an operator is offered Resume and Abort.
   */
  async function fleetWithPausedRollout(): Promise<{ hub: ConsoleHub; id: string }> {
    const hub = await startConsoleHub(cleanup);
    const { id } = await startSimDevice(cleanup, hub, 'meter', { labels: { site: 'plant' } });
    await startSimDevice(cleanup, hub, 'valve', { labels: { site: 'plant' } });
    const spec = (image: string, rollout?: object) => ({
      name: APP,
      scheduling: { selectors: { site: 'plant' } },
      spec: { containers: [{ name: 'main', image }], update: { minReadySeconds: 0 }, ...(rollout ? { rollout } : {}) },
    });
    const apply = async (body: object) => {
      const applied = await hub.api('POST', '/api/v1/apps', body);
      expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    };
    await apply(spec('registry.local/meter:1'));
    await waitFor(`${APP} r1 running on both devices`, async () => {
      const items = (await hub.api('GET', '/api/v1/devices')).body.items as { apps?: { name: string; phase: string }[] }[];
      return items.length === 2 && items.every((d) => d.apps?.some((a) => a.name === APP && a.phase === 'running'));
    });
    await apply(spec('registry.local/meter:2', { canary: 1, pauseAfterCanary: true }));
    let phase: unknown;
    await waitFor('the rollout paused after its canary', async () => {
      phase = (await hub.api('GET', `/api/v1/apps/${APP}/rollout`)).body.phase;
      return phase === 'paused';
    }).catch((err: Error) => {
      throw new Error(`${err.message}; the rollout is ${String(phase)}`);
    });
    return { hub, id };
  }

  it('offers a viewer no control that changes anything, and the hub refuses a forged request from its page', async () => {
    const { hub, id } = await fleetWithPausedRollout();
    const viewerKey = await createAccount(hub.hub, 'wall', 'viewer');
    const watched = await openConsole(suite, hub, { key: viewerKey, who: /wall · viewer/ });
    const { page } = watched;

    await deviceRow(page, id).waitFor({ timeout: 15_000 });
    expect(await page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Edit labels' }).count()).toBe(0);
    expect(await page.getByLabel(`Select ${id}`).count()).toBe(0);

    await page.goto('/#/apps');
    await page.getByRole('table', { name: 'Apps' }).locator(`tr[data-app="${APP}"]`).waitFor();
    expect(await page.getByRole('link', { name: 'New app' }).count()).toBe(0);

    await page.goto(`/#/apps/${APP}/rollout`);
    await page.getByRole('link', { name: 'Revisions', exact: true }).waitFor();
    expect(await page.getByRole('link', { name: 'Edit', exact: true }).count()).toBe(0);
    for (const control of ['Pause', 'Resume', 'Abort', 'Roll back']) {
      expect(await page.getByRole('button', { name: control }).count(), control).toBe(0);
    }
    await page.goto(`/#/apps/${APP}/revisions`);
    await page.getByRole('table', { name: 'Revisions' }).waitFor();
    expect(await page.getByRole('button', { name: 'Roll back' }).count()).toBe(0);

    await page.goto(`/#/devices/${id}/terminal`);
    await page.getByRole('heading', { level: 1, name: id }).waitFor();
    expect(await page.getByRole('button', { name: 'Open shell' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Exec' }).count()).toBe(0);

    // The page hides the controls; the hub is what actually refuses. A request forged with the page's own key:
    watched.allow(/(response 403: POST http\S+\/api\/v1\/apps|status of 403 .*\(http\S+\/api\/v1\/apps\))$/);
    const forged = await page.evaluate(`fetch('/api/v1/apps', {
      method: 'POST',
      headers: { authorization: 'Bearer ' + sessionStorage.getItem('flotilla.apiKey'), 'content-type': 'application/json' },
      body: JSON.stringify({ spec: { name: 'forged', scheduling: { devices: ['${id}'] }, spec: { containers: [{ name: 'x', image: 'evil:1' }] } } }),
    }).then((res) => res.status)`);
    expect(forged).toBe(403);
    const apps = await hub.api('GET', '/api/v1/apps');
    expect((apps.body.items as { name: string }[]).map((a) => a.name)).toEqual([APP]);
    await watched.screenshot('viewer-app');
    watched.expectClean();

    // The same pages offer an operator what they withheld from the viewer: the checks above could not pass by accident.
    const operatorKey = await createAccount(hub.hub, 'deployer', 'operator');
    const operator = await openConsole(suite, hub, { path: `/#/apps/${APP}/rollout`, key: operatorKey, who: /deployer · operator/ });
    await operator.page.getByRole('button', { name: 'Resume' }).waitFor();
    expect(await operator.page.getByRole('link', { name: 'Edit', exact: true }).count()).toBe(1);
    await operator.page.goto('/#/');
    await operator.page.getByLabel(`Select ${id}`).waitFor();
    expect(await operator.page.getByRole('button', { name: 'Edit labels' }).count()).toBe(1);
    operator.expectClean();
  });
});
