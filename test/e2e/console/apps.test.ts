/**
 * Deploying from the console in Chromium, against a hub that requires keys
 * and registered simulated devices: a spec from the editor (a bad one shows
 * the hub's error at its field and creates nothing), a rollout watched,
 * paused and resumed from its page until complete, and a rollback that makes
 * a new revision.
 */
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { describeBrowser } from '../../support/browser.js';
import { useBrowser } from '../../support/browser-suite.js';
import { waitFor } from '../../support/wait.js';
import { openConsole } from './console-page.js';
import { type ConsoleHub, startConsoleHub, startSimDevice } from './fixture.js';

const APP = 'thermo';
const DEVICES = ['pump', 'gate', 'tank', 'fan', 'vent'];

/** A spec as an operator types it; line 10 is the port, where the bad spec's error must show. */
function specYaml({ image, port, rollout }: { image: string; port: string; rollout: boolean }): string {
  return [
    `name: ${APP}`,
    'scheduling:',
    '  selectors:',
    '    site: plant',
    'spec:',
    '  containers:',
    '    - name: main',
    `      image: ${image}`,
    '      ports:',
    `        - "${port}"`,
    '  update:',
    '    minReadySeconds: 0',
    ...(rollout ? ['  rollout:', '    canary: 1', '    pauseAfterCanary: true', '    batchSize: 1'] : []),
    '',
  ].join('\n');
}

describeBrowser('web console: apps, the editor and rollouts', () => {
  const suite = useBrowser({ servesConsole: true });
  const { cleanup } = suite;

  async function appsList(hub: ConsoleHub): Promise<string[]> {
    const res = await hub.api('GET', '/api/v1/apps');
    expect(res.status).toBe(200);
    return (res.body.items as { name: string }[]).map((a) => a.name);
  }

  async function rolloutOf(hub: ConsoleHub): Promise<{ phase: string }> {
    return (await hub.api('GET', `/api/v1/apps/${APP}/rollout`)).body as { phase: string };
  }

  /** `[value, max]` of a stage's progress bar. */
  async function progress(page: Page, stage: 'Canary' | 'Rest'): Promise<[number, number]> {
    const bar = page.getByRole('progressbar', { name: stage });
    return [Number(await bar.getAttribute('value')), Number(await bar.getAttribute('max'))];
  }

  it('applies a spec from the editor, shows a bad one’s error at its field, and steers its rollout to complete', async () => {
    const hub = await startConsoleHub(cleanup);
    // Each pull takes 5 s, so the Rest stage (one device at a time, 20 s) lasts long enough to pause on a loaded
    // machine (at 2.5 s, a CI run beside other work once found it finished before the click).
    for (const name of DEVICES) await startSimDevice(cleanup, hub, name, { labels: { site: 'plant' }, pullDelayMs: 5_000 });
    const watched = await openConsole(suite, hub, { path: '/#/apps' });
    const { page } = watched;
    await page.getByRole('table', { name: 'Apps' }).waitFor();
    await page.getByRole('link', { name: 'New app' }).click();
    await page.waitForURL(/#\/apply$/);

    // A bad spec: the hub's refusal is shown at the port's line and nothing is created.
    watched.allow(/(response 4\d\d: POST http\S+\/api\/v1\/apps|status of 4\d\d .*\(http\S+\/api\/v1\/apps\))$/);
    const editor = page.getByLabel('Spec (YAML)');
    await editor.fill(specYaml({ image: 'registry.local/thermo:1', port: 'not-a-port', rollout: false }));
    await page.getByRole('button', { name: 'Apply' }).click();
    const issue = page.getByRole('alert').locator('[data-path="/spec/containers/0/ports/0"]');
    await issue.waitFor({ timeout: 10_000 });
    expect(await issue.textContent()).toMatch(/line 10/);
    expect(await page.locator('[data-issue-line="10"]').count()).toBeGreaterThanOrEqual(1);
    await watched.screenshot('editor-errors');
    expect(await appsList(hub)).toEqual([]);

    // The good spec: the notice names the revision and links to the app.
    await editor.fill(specYaml({ image: 'registry.local/thermo:1', port: '8080:80', rollout: false }));
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.locator(`a[href="#/apps/${APP}"]`).first().waitFor({ timeout: 10_000 });
    expect(await appsList(hub)).toEqual([APP]);
    await waitFor(
      `${APP} r1 running on every device`,
      async () => {
        const res = await hub.api('GET', '/api/v1/devices');
        const items = res.body.items as { apps?: { name: string; phase: string }[] }[];
        return items.length === DEVICES.length && items.every((d) => d.apps?.some((a) => a.name === APP && a.phase === 'running'));
      },
      { timeoutMs: 30_000 },
    );

    await page.goto('/#/apps');
    await page.getByRole('table', { name: 'Apps' }).locator(`tr[data-app="${APP}"]`).waitFor();
    await watched.screenshot('apps');

    // Revision 2 from the app's Edit tab, rolled out one canary then one device at a time.
    await page.goto(`/#/apps/${APP}/edit`);
    await editor.fill(specYaml({ image: 'registry.local/thermo:2', port: '8080:80', rollout: true }));
    await page.getByRole('button', { name: 'Apply' }).click();
    await page
      .getByText(/revision 2/i)
      .first()
      .waitFor({ timeout: 10_000 });

    await page.goto(`/#/apps/${APP}/rollout`);
    await page.getByRole('progressbar', { name: 'Canary' }).waitFor();
    // A healthy canary pauses the rollout by itself; the page says so and offers Resume.
    await expect.poll(() => progress(page, 'Canary'), { timeout: 30_000 }).toEqual([1, 1]);
    await page.getByRole('button', { name: 'Resume' }).waitFor({ timeout: 15_000 });
    expect((await rolloutOf(hub)).phase).toBe('paused');
    expect((await progress(page, 'Rest'))[0]).toBe(0);
    await page.getByRole('button', { name: 'Resume' }).click();

    // Pause mid-way: no more devices start, the Rest stage stops short of its end.
    const pause = page.getByRole('button', { name: 'Pause' });
    await pause.waitFor({ timeout: 15_000 });
    await pause.click();
    await page.getByRole('button', { name: 'Resume' }).waitFor({ timeout: 15_000 });
    expect((await rolloutOf(hub)).phase).toBe('paused');
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const [restWhilePaused, restMax] = await progress(page, 'Rest');
    expect(restMax).toBe(DEVICES.length - 1);
    expect(restWhilePaused).toBeLessThan(restMax);
    await page.getByRole('table', { name: 'Rollout devices' }).waitFor();
    await watched.screenshot('app-rollout');

    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => progress(page, 'Rest'), { timeout: 60_000 }).toEqual([restMax, restMax]);
    await page.getByText('complete', { exact: true }).first().waitFor({ timeout: 15_000 });
    expect((await rolloutOf(hub)).phase).toBe('complete');

    // Roll back to revision 1 from the Revisions tab: a new revision 3 with r1's spec.
    await page.goto(`/#/apps/${APP}/revisions`);
    const revisions = page.getByRole('table', { name: 'Revisions' });
    await revisions.waitFor();
    const rollBack = revisions
      .locator('tr', { has: page.getByRole('cell', { name: '1', exact: true }) })
      .getByRole('button', { name: 'Roll back' });
    await rollBack.click();
    await page.getByRole('dialog').getByRole('button', { name: 'Roll back' }).click();
    await revisions.getByRole('cell', { name: '3', exact: true }).waitFor({ timeout: 15_000 });
    const history = await hub.api('GET', `/api/v1/apps/${APP}/revisions`);
    const latest = (history.body.items as { revision: number }[]).map((r) => r.revision);
    expect(Math.max(...latest)).toBe(3);
    const current = await hub.api('GET', `/api/v1/apps/${APP}`);
    expect(JSON.stringify(current.body)).toContain('registry.local/thermo:1');
    watched.expectClean();
  });

  it('shows on the Revisions tab the source each revision was applied from', async () => {
    const hub = await startConsoleHub(cleanup);
    const spec = (image: string) => ({
      name: APP,
      scheduling: { selectors: { site: 'plant' } },
      spec: { containers: [{ name: 'main', image }] },
    });
    for (const [image, source] of [
      ['registry.local/thermo:1', 'git:1111111'],
      ['registry.local/thermo:2', 'git:2222222'],
    ] as const) {
      expect((await hub.api('POST', '/api/v1/apply', { specs: [spec(image)], source })).status).toBe(200);
    }
    expect((await hub.api('POST', '/api/v1/apps', spec('registry.local/thermo:3'))).status).toBe(200);
    const watched = await openConsole(suite, hub, { path: `/#/apps/${APP}/revisions` });
    const revisions = watched.page.getByRole('table', { name: 'Revisions' });
    await revisions.waitFor();
    const sourceOf = async (revision: number) => {
      const row = revisions.locator(`tr[data-revision="${revision}"]`);
      const headers = await revisions.locator('thead th').allTextContents();
      return row
        .locator('td')
        .nth(headers.findIndex((h) => h.trim() === 'Source'))
        .textContent();
    };
    expect([await sourceOf(1), await sourceOf(2), await sourceOf(3)]).toEqual(['git:1111111', 'git:2222222', '–']);
    watched.expectClean();
  });
});
