/**
 * The parts of the apps pages that apps.test.ts does not walk through, in
 * Chromium against a hub that requires keys: the diff between two revisions'
 * specs and its From/To choice, a YAML syntax error shown at its line with
 * nothing sent to the hub, an issue's "line N" putting the cursor on that
 * line, the editor left and applied from the keyboard, an unchanged spec
 * said as such, and an app's Edit tab asking before it applies a spec that
 * names another app.
 */
import { expect, it } from 'vitest';
import { describeBrowser, logIn } from '../../support/browser.js';
import { useBrowser } from '../../support/browser-suite.js';
import { appSpec } from '../../support/fixtures.js';
import { startConsoleHub } from './fixture.js';

/** `appSpec('web', …, 'registry.local/web:2')` as an operator would type it. */
const WEB_V2_YAML = [
  'name: web',
  'scheduling:',
  '  selectors: { site: roof }',
  'spec:',
  '  containers:',
  '    - name: gateway',
  '      image: registry.local/web:2',
  '      ports: ["8080:80"]',
  '      env: [{ name: LOG_LEVEL, value: info }]',
  '',
].join('\n');

describeBrowser('web console: revision diff and the spec editor', () => {
  const suite = useBrowser({ servesConsole: true });

  it('diffs two revisions, refuses to send YAML that does not parse, and applies from the keyboard', async () => {
    const hub = await startConsoleHub(suite.cleanup);
    for (const version of ['1', '2']) {
      const applied = await hub.api('POST', '/api/v1/apps', appSpec('web', { site: 'roof' }, `registry.local/web:${version}`));
      expect(applied.status).toBe(200);
    }
    // Opened and logged in by hand: every change the page sends counts, from its first load on.
    const watched = await suite.open(hub.hub.httpUrl);
    const { page } = watched;
    const changes: string[] = [];
    page.on('request', (request) => {
      if (request.method() !== 'GET') changes.push(`${request.method()} ${new URL(request.url()).pathname}`);
    });

    // The diff opens on the previous revision against the current one.
    await page.goto('/#/apps/web/revisions');
    await logIn(page, hub.adminKey, /admin · admin/);
    const diff = page.getByRole('region', { name: 'Spec diff' });
    await diff.getByText('Revision 1 → 2: 1 line added, 1 removed').waitFor();
    expect(await diff.locator('[data-diff="removed"]').allTextContents()).toEqual([expect.stringContaining('registry.local/web:1')]);
    expect(await diff.locator('[data-diff="added"]').allTextContents()).toEqual([expect.stringContaining('registry.local/web:2')]);
    await page.getByLabel('From').selectOption('2');
    await diff.getByText('Revision 2 → 2: the same spec').waitFor();
    expect(await diff.locator('[data-diff="added"], [data-diff="removed"]').count()).toBe(0);
    await watched.screenshot('app-revisions');

    // YAML that does not parse: its error is listed at its line and nothing goes to the hub.
    await page.goto('/#/apply');
    const editor = page.getByLabel('Spec (YAML)');
    await editor.fill('name: web\nscheduling:\n  selectors: { site: roof }\nspec:\n  containers: [a\n');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('The YAML does not parse; nothing was sent.').waitFor();
    expect(changes).toEqual([]);
    const issue = page.getByRole('alert').locator('li').first();
    const line = Number((await issue.textContent())?.match(/\(line (\d+)\)/)?.[1]);
    expect(line).toBeGreaterThanOrEqual(5);
    expect(await page.locator(`[data-issue-line="${line}"]`).count()).toBe(1);

    // Choosing the issue puts the cursor on its line, in the editor.
    await issue.getByRole('button', { name: `(line ${line})` }).click();
    // Page code as text: this file is compiled without the DOM types.
    expect(await page.evaluate('document.activeElement?.id')).toBe(await editor.getAttribute('id'));
    const caretLine = "document.activeElement.value.slice(0, document.activeElement.selectionStart).split('\\n').length";
    expect(await page.evaluate(caretLine)).toBe(line);

    // Tab leaves the editor (no keyboard trap) for Apply; Ctrl+Enter applies from inside it.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Apply');
    await editor.fill(WEB_V2_YAML);
    await editor.press('Control+Enter');
    await page.getByText('Nothing changed (changed: false): web already runs this spec as revision 2.').waitFor();
    expect(changes).toEqual(['POST /api/v1/apps']);
    expect(await page.locator('[data-issue-line]').count()).toBe(0);

    // In an app's Edit tab, a spec that names another app is applied only once confirmed.
    await page.goto('/#/apps/web/edit');
    await editor.fill(WEB_V2_YAML.replace('name: web', 'name: web-copy'));
    await page.getByRole('button', { name: 'Apply' }).click();
    const dialog = page.getByRole('dialog', { name: 'Apply to app web-copy?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(changes).toEqual(['POST /api/v1/apps']);
    const history = await hub.api('GET', '/api/v1/apps/web/revisions');
    expect((history.body.items as { revision: number }[]).map((r) => r.revision)).toEqual([2, 1]);
    expect(((await hub.api('GET', '/api/v1/apps')).body.items as { name: string }[]).map((a) => a.name)).toEqual(['web']);
    watched.expectClean();
  });
});
