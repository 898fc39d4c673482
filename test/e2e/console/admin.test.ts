/**
 * The console's admin area in a real browser against a real hub: what an
 * operator does there (tokens, service accounts, secrets, revoking a device)
 * takes effect where it matters (a token registers a device or no longer
 * does, a key logs in or no longer does, a revoked device is cut off), and
 * each credential is shown exactly once.
 */
import type { Page } from 'playwright-core';
import { expect, it } from 'vitest';
import { createAccount } from '../../support/auth.js';
import { describeBrowser, PHONE } from '../../support/browser.js';
import { useBrowser } from '../../support/browser-suite.js';
import { http } from '../../support/http.js';
import { waitFor } from '../../support/wait.js';
import { openConsole } from './console-page.js';
import { startConsoleHub, startSimDevice } from './fixture.js';

describeBrowser('console: admin', () => {
  const suite = useBrowser({ servesConsole: true });

  function dialog(page: Page) {
    return page.getByRole('dialog');
  }

  it('creates a registration token that registers a device, shows it once, and revokes it after a confirm', async () => {
    const hub = await startConsoleHub(suite.cleanup);
    const { page, context, ...watched } = await openConsole(suite, hub, { path: '/#/admin/tokens' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: hub.hub.httpUrl });

    // A malformed label is named at its field and nothing is created.
    await page.getByLabel('Labels').fill('site');
    await page.getByRole('button', { name: 'Create token' }).click();
    await expect.poll(() => page.locator('.field.invalid').textContent()).toContain('"site" is not key=value');
    expect((await hub.api('GET', '/api/v1/tokens')).body.items).toEqual([]);

    await page.getByLabel('Labels').fill('site=roof');
    await page.getByLabel('Max uses').fill('2');
    await page.getByLabel('Expires in (hours)').fill('1.5');
    await page.getByRole('button', { name: 'Create token' }).click();
    const once = page.locator('[data-once]');
    const token = (await once.textContent({ timeout: 15_000 }))?.trim() ?? '';
    expect(token.length).toBeGreaterThan(16);
    await expect.poll(() => page.getByText('it will not be shown again').count()).toBe(1);
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Copied.' }).count()).toBe(1);
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(token);
    await watched.screenshot('admin-tokens');

    const [listed] = (await hub.api('GET', '/api/v1/tokens')).body.items;
    expect(listed).toMatchObject({ labels: { site: 'roof' }, maxUses: 2, uses: 0, revoked: false });
    const expiresInMs = Date.parse(listed.expiresAt) - Date.parse(listed.createdAt);
    expect(Math.abs(expiresInMs - 1.5 * 3600_000)).toBeLessThan(5_000);

    // The token works as a device would use it.
    const registered = await http(hub.hub.httpUrl, 'POST', '/api/v1/register', { token, deviceId: 'roof-1', labels: {} });
    expect(registered.status).toBe(200);

    // Shown once: a reload lists the token by id and never shows it again.
    await page.reload();
    const row = page.getByRole('table', { name: 'Tokens' }).locator(`tr[data-token="${listed.id}"]`);
    await expect.poll(() => row.textContent()).toContain('1 / 2');
    expect(await page.locator('[data-once]').count()).toBe(0);
    expect(await page.content()).not.toContain(token);

    // Revoke asks first; Cancel leaves the token usable.
    await row.getByRole('button', { name: 'Revoke' }).click();
    await dialog(page).getByRole('button', { name: 'Cancel' }).click();
    expect((await hub.api('GET', '/api/v1/tokens')).body.items[0].revoked).toBe(false);
    await row.getByRole('button', { name: 'Revoke' }).click();
    await dialog(page).getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => row.textContent()).toContain('revoked');
    const refused = await http(hub.hub.httpUrl, 'POST', '/api/v1/register', { token, deviceId: 'roof-2', labels: {} });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    watched.expectClean();
  });

  it('creates a service account whose key, shown once, logs in with its role; deletes it after a confirm', async () => {
    const hub = await startConsoleHub(suite.cleanup);
    const { page, ...watched } = await openConsole(suite, hub, { path: '/#/admin/serviceaccounts' });

    await page.getByLabel('Name').fill('Wall_Screen');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('.field.invalid').textContent()).toContain('lower-case letters');
    expect((await hub.api('GET', '/api/v1/serviceaccounts')).body.items.map((a: { name: string }) => a.name)).not.toContain('wall_screen');

    await page.getByLabel('Name').fill('wall');
    await page.getByLabel('Role').selectOption('viewer');
    await page.getByRole('button', { name: 'Create account' }).click();
    const viewerKey = (await page.locator('[data-once]').textContent({ timeout: 15_000 }))?.trim() ?? '';
    expect(viewerKey).toMatch(/^wall\./);
    const row = page.getByRole('table', { name: 'Service accounts' }).locator('tr[data-account="wall"]');
    await expect.poll(() => row.textContent()).toContain('viewer');

    // The hub's refusal of a taken name is shown at the name, in its words.
    await page.getByLabel('Name').fill('wall');
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect.poll(() => page.locator('.field.invalid').textContent()).toContain('"wall" already exists');
    watched.allow(/409.*\/api\/v1\/serviceaccounts\b/);
    await watched.screenshot('admin-service-accounts');

    // The key logs in as what it was created as: a viewer has no Admin link.
    const asViewer = await openConsole(suite, hub, { path: '/#/admin/secrets', key: viewerKey, who: /wall · viewer/ });
    expect(await asViewer.page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    asViewer.expectClean();

    await row.getByRole('button', { name: 'Delete' }).click();
    await dialog(page).getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => row.count()).toBe(0);
    expect((await hub.api('GET', '/api/v1/whoami', undefined, viewerKey)).status).toBe(401);
    watched.expectClean();
  });

  it('lets an operator set, replace and delete secrets at #/admin/secrets, never showing a value; a viewer only reads names', async () => {
    const hub = await startConsoleHub(suite.cleanup);
    const operatorKey = await createAccount(hub.hub, 'ops', 'operator');
    const viewerKey = await createAccount(hub.hub, 'wall', 'viewer');
    const { page, ...watched } = await openConsole(suite, hub, { path: '/#/admin/secrets', key: operatorKey, who: /ops · operator/ });
    expect(await page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    const tabs = page.getByRole('navigation', { name: 'Admin' });
    expect(await tabs.getByRole('link').allTextContents()).toEqual(['Secrets']);

    await page.getByLabel('Name').fill('db-pass');
    await page.getByLabel('Value').fill('first-value-123');
    await page.getByRole('button', { name: 'Set secret' }).click();
    const row = page.getByRole('table', { name: 'Secrets' }).locator('tr[data-secret="db-pass"]');
    await row.waitFor({ timeout: 15_000 });
    expect(await page.getByLabel('Value').inputValue()).toBe('');
    expect(await page.content()).not.toContain('first-value-123');

    // An existing name asks before replacing.
    await page.getByLabel('Name').fill('db-pass');
    await page.getByLabel('Value').fill('second-value-456');
    await page.getByRole('button', { name: 'Set secret' }).click();
    await dialog(page).getByRole('button', { name: 'Replace' }).click();
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Replaced secret db-pass.' }).count()).toBe(1);

    // The hub refuses to delete a secret an app uses, and the page says why.
    const applied = await hub.api('POST', '/api/v1/apps', {
      name: 'gateway',
      scheduling: { devices: ['nowhere-1'] },
      spec: { containers: [{ name: 'gw', image: 'registry.local/gw:1', env: [{ name: 'PASS', fromSecret: 'db-pass' }] }] },
    });
    expect(applied.status).toBe(200);
    await row.getByRole('button', { name: 'Delete' }).click();
    await dialog(page).getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => row.getByRole('alert').textContent()).toContain('gateway');
    watched.allow(/400.*\/api\/v1\/secrets\/db-pass\b/);
    await watched.screenshot('admin-secrets');

    expect((await hub.api('DELETE', '/api/v1/apps/gateway')).status).toBe(200);
    await row.getByRole('button', { name: 'Delete' }).click();
    await dialog(page).getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => row.count()).toBe(0);
    watched.expectClean();

    // A viewer sees the names and no controls.
    await hub.api('PUT', '/api/v1/secrets/api-token', { value: 'x' });
    const asViewer = await openConsole(suite, hub, { path: '/#/admin/secrets', key: viewerKey, who: /wall · viewer/ });
    await asViewer.page.getByRole('table', { name: 'Secrets' }).locator('tr[data-secret="api-token"]').waitFor();
    expect(await asViewer.page.getByRole('button', { name: /Set secret|Delete/ }).count()).toBe(0);
    asViewer.expectClean();
  });

  it('revokes a device after a confirm in a dialog that returns focus to its button, and says it was disconnected', async () => {
    const hub = await startConsoleHub(suite.cleanup);
    await startSimDevice(suite.cleanup, hub, 'press');
    await waitFor('press-0 online', async () => (await hub.api('GET', '/api/v1/devices/press-0')).body.online === true);

    const { page, ...watched } = await openConsole(suite, hub, { path: '/#/admin/devices', viewport: PHONE });
    const row = page.getByRole('table', { name: 'Devices' }).locator('tr[data-device="press-0"]');
    await expect.poll(() => row.textContent()).toContain('online');

    // By keyboard: Enter opens the dialog on Cancel; Escape closes it and focus is back on Revoke.
    const revoke = row.getByRole('button', { name: 'Revoke' });
    await revoke.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate('document.activeElement?.textContent')).toBe('Cancel');
    await watched.screenshot('admin-devices-confirm');
    await page.keyboard.press('Escape');
    await expect
      .poll(() => page.evaluate('document.activeElement?.closest("tr")?.dataset.device + ": " + document.activeElement?.textContent'))
      .toBe('press-0: Revoke');
    expect((await hub.api('GET', '/api/v1/devices/press-0')).body.revokedAt).toBeUndefined();

    await revoke.click();
    await dialog(page).getByRole('button', { name: 'Revoke' }).click();
    await expect
      .poll(() => page.getByRole('status').filter({ hasText: 'Revoked press-0' }).textContent())
      .toContain('has been disconnected');
    await expect.poll(() => row.textContent()).toContain('revoked');
    await waitFor('press-0 offline', async () => (await hub.api('GET', '/api/v1/devices/press-0')).body.online === false);
    watched.expectClean();
  });
});
