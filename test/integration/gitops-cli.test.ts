/**
 * The GitOps commands as CI runs them: a real hub process (SQLite) on
 * loopback, the real `flotilla` executable as a child process, and folders of
 * spec files in temp dirs. What the hub stores is read back over its HTTP API,
 * never from the CLI's own output.
 *
 * The story of one folder: three apps applied with a prune scope; one edited,
 * one deleted, one added; `diff --prune` shows exactly that (exit 1) and stores
 * nothing; `apply --prune` makes it so and names its commit; a second diff
 * exits 0; apps of another scope or of none survive. Then what must never
 * happen: an invalid folder applies nothing, a dry run stores nothing; and a
 * hub made by hand survives `export --dir` then `apply --prune` unchanged.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppDetail, AppHistory, AppSpec, AppSummary, List } from '../../shared/index.js';
import { http } from '../support/http.js';
import { type HubProcess, type RunResult, runCli, startHubProcess, stopAll } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';

/** Each CLI run starts node and tsx (about a second on a busy two-core machine); tests make several. */
const SLOW = { timeout: 120_000 };

let hub: HubProcess;
let byHand: HubProcess;

beforeAll(async () => {
  [hub, byHand] = await Promise.all([startHubProcess(), startHubProcess()]);
}, 60_000);

afterAll(async () => {
  await stopAll();
});

function flotilla(target: HubProcess, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runCli(['--hub', target.url, ...args], { env: { FLOTILLA_SOURCE: '', FLOTILLA_TOKEN: '', ...env }, timeoutMs: 60_000 });
}

/** Writes `files` (path → text) under `root`, removing the ones whose text is null. */
function write(root: string, files: Record<string, string | null>): void {
  for (const [path, text] of Object.entries(files)) {
    const file = join(root, path);
    if (text === null) {
      rmSync(file);
      continue;
    }
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}

function app(name: string, image: string, extra = ''): string {
  return `name: ${name}\nscheduling:\n  selectors: { site: roof }\nspec:\n  containers:\n    - name: main\n      image: ${image}\n${extra}`;
}

async function apps(target: HubProcess): Promise<Record<string, number>> {
  const { body } = await http<List<AppSummary>>(target.url, 'GET', '/api/v1/apps');
  return Object.fromEntries(body.items.map((a) => [a.name, a.revision]));
}

async function history(target: HubProcess, name: string): Promise<AppHistory> {
  const res = await http<AppHistory>(target.url, 'GET', `/api/v1/apps/${name}/revisions`);
  expect(res.status).toBe(200);
  return res.body;
}

async function detail(target: HubProcess, name: string): Promise<AppDetail> {
  return (await http<AppDetail>(target.url, 'GET', `/api/v1/apps/${name}`)).body;
}

describe('a folder in git is the fleet', SLOW, () => {
  const repo = scratchDir('flotilla-gitops-');
  const folder = join(repo, 'apps');

  it('applies three apps with a prune scope, beside apps of another scope and of none', async () => {
    write(repo, {
      'apps/web.yaml': app('web', 'nginx:1.27', '      ports: ["8080:80"]\n'),
      'apps/monitoring/watchers.yaml': `${app('cpu-watch', 'busybox:1.36')}---\n${app('disk-watch', 'busybox:1.36')}`,
      'apps/README.md': 'not a spec',
      'apps/.git/HEAD.yaml': app('in-git-dir', 'x:1'),
      'other-team.yaml': app('other-team', 'redis:7'),
      'by-hand.yaml': app('by-hand', 'redis:7'),
    });
    const other = await flotilla(hub, ['apply', '-f', join(repo, 'other-team.yaml'), '--prune-scope', 'other-team']);
    expect(other).toMatchObject({ code: 0, stdout: 'app/other-team created (revision 1)\n' });
    expect((await flotilla(hub, ['apply', '-f', join(repo, 'by-hand.yaml')])).code).toBe(0);

    const applied = await flotilla(hub, ['apply', '-f', folder, '--prune-scope', 'shop', '--source', 'git:1111111']);
    expect(applied).toEqual({
      code: 0,
      stdout: 'app/cpu-watch created (revision 1)\napp/disk-watch created (revision 1)\napp/web created (revision 1)\n',
      stderr: '',
    });
    expect(await apps(hub)).toEqual({ 'by-hand': 1, 'cpu-watch': 1, 'disk-watch': 1, 'other-team': 1, web: 1 });
    expect((await detail(hub, 'web')).scope).toBe('shop');
    expect((await history(hub, 'web')).items[0]).toMatchObject({ revision: 1, source: 'git:1111111' });
  });

  it('diff --prune shows the edit, the deletion and the addition, exits 1, and stores nothing', async () => {
    write(repo, {
      'apps/web.yaml': app('web', 'nginx:1.28', '      ports: ["8080:80"]\n'),
      'apps/monitoring/watchers.yaml': app('cpu-watch', 'busybox:1.36'),
      'apps/new.yaml': app('new-app', 'alpine:3.20'),
    });
    const before = await apps(hub);
    const diff = await flotilla(hub, ['diff', '-f', folder, '--prune', '--prune-scope', 'shop']);
    expect(diff.stderr).toBe('');
    expect(diff.code).toBe(1);
    expect(diff.stdout).toBe(
      [
        'app/cpu-watch unchanged',
        'app/new-app created',
        '+name: new-app',
        '+scheduling:',
        '+  selectors:',
        '+    site: roof',
        '+spec:',
        '+  containers:',
        '+    - name: main',
        '+      image: alpine:3.20',
        'app/web changed (revision 1 → 2)',
        '--- app/web revision 1 (hub)',
        `+++ ${join(folder, 'web.yaml')}`,
        '@@ -5,6 +5,6 @@',
        ' spec:',
        '   containers:',
        '     - name: main',
        '-      image: nginx:1.27',
        '+      image: nginx:1.28',
        '       ports:',
        '         - 8080:80',
        'app/disk-watch deleted',
        '-name: disk-watch',
        '-scheduling:',
        '-  selectors:',
        '-    site: roof',
        '-spec:',
        '-  containers:',
        '-    - name: main',
        '-      image: busybox:1.36',
        '',
      ].join('\n'),
    );
    expect(await apps(hub)).toEqual(before);
  });

  it('apply --dry-run --prune lists what it would do and stores nothing', async () => {
    const before = await apps(hub);
    const webHistory = await history(hub, 'web');
    const dry = await flotilla(hub, ['apply', '-f', folder, '--dry-run', '--prune', '--prune-scope', 'shop']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout.split('\n').filter((line) => line.startsWith('app/'))).toEqual([
      'app/cpu-watch unchanged (revision 1) (dry run)',
      'app/new-app created (revision 1) (dry run)',
      'app/web configured (revision 2) (dry run)',
      'app/disk-watch pruned (dry run)',
    ]);
    expect(dry.stdout).toContain('app/new-app created (revision 1) (dry run)\n  devices: none selected now\napp/web');
    expect(await apps(hub)).toEqual(before);
    expect(await history(hub, 'web')).toEqual(webHistory);
  });

  it('apply --prune lists the apps it deletes first, makes the folder so, and records the commit', async () => {
    const applied = await flotilla(hub, ['apply', '-f', folder, '--prune', '--prune-scope', 'shop'], { FLOTILLA_SOURCE: 'git:2222222' });
    expect(applied).toEqual({
      code: 0,
      stdout: [
        'pruning 1 app of scope shop that the specs no longer name: app/disk-watch',
        'app/cpu-watch unchanged (revision 1)',
        'app/new-app created (revision 1)',
        'app/web configured (revision 2)',
        'app/disk-watch pruned',
        '',
      ].join('\n'),
      stderr: '',
    });
    // The other scope's app and the one made by hand are not this folder's to delete.
    expect(await apps(hub)).toEqual({ 'by-hand': 1, 'cpu-watch': 1, 'new-app': 1, 'other-team': 1, web: 2 });
    expect((await http(hub.url, 'GET', '/api/v1/apps/disk-watch')).status).toBe(404);
    expect((await history(hub, 'web')).items.map((r) => [r.revision, r.source])).toEqual([
      [2, 'git:2222222'],
      [1, 'git:1111111'],
    ]);
    // An unchanged app got no revision, so its history keeps the commit that made it.
    expect((await history(hub, 'cpu-watch')).items.map((r) => [r.revision, r.source])).toEqual([[1, 'git:1111111']]);

    const table = await flotilla(hub, ['rollout', 'history', 'web']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^REVISION +CREATED +IMAGES +CAUSE +SOURCE$/);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^2\* +\d+s +nginx:1\.28 +apply +git:2222222$/),
      expect.stringMatching(/^1 +\d+s +nginx:1\.27 +apply +git:1111111$/),
    ]);
    expect((await flotilla(hub, ['describe', 'app', 'web'])).stdout).toContain('\nScope:       shop\n');
  });

  it('a second diff finds nothing to change and exits 0', async () => {
    const again = await flotilla(hub, ['diff', '-f', folder, '--prune', '--prune-scope', 'shop']);
    expect(again).toEqual({ code: 0, stdout: 'app/cpu-watch unchanged\napp/new-app unchanged\napp/web unchanged\n', stderr: '' });
  });

  it('an app of another scope in the folder is refused whole: diff exits 5, apply stores nothing', async () => {
    write(repo, { 'apps/other-team.yaml': app('other-team', 'redis:7.2') });
    const before = await apps(hub);
    const diff = await flotilla(hub, ['diff', '-f', folder, '--prune-scope', 'shop']);
    expect(diff.code).toBe(5);
    expect(diff.stderr).toContain(`  ${join(folder, 'other-team.yaml')}: name: app "other-team" belongs to prune scope "other-team"`);
    const apply = await flotilla(hub, ['apply', '-f', folder, '--prune-scope', 'shop']);
    expect(apply.code).toBe(1);
    expect(apply.stdout).toBe('');
    expect(await apps(hub)).toEqual(before);
    write(repo, { 'apps/other-team.yaml': null });
  });
});

describe('what must never half happen', SLOW, () => {
  it('one invalid file in a folder: nothing applied, every error printed with its file and path, exit 2', async () => {
    const root = scratchDir('flotilla-gitops-bad-');
    write(root, {
      'good.yaml': app('good-one', 'nginx:1.27'),
      'team/bad.yaml': `${app('bad-one', 'nginx:1.27')}---\n${app('Bad-Two', 'nginx:1.27', '      ports: ["eighty"]\n')}`,
    });
    const before = await apps(hub);
    for (const command of ['apply', 'diff']) {
      const result = await flotilla(hub, [command, '-f', root, '--prune', '--prune-scope', 'bad']);
      expect(result.code, command).toBe(2);
      expect(result.stdout, command).toBe('');
      const lines = result.stderr.split('\n');
      expect(lines[0]).toBe('error: 2 problems in the specs: nothing was sent to the hub');
      const bad = join(root, 'team/bad.yaml');
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^  ${escapeRegExp(bad)} \\(document 2\\): name: must match pattern`)));
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(`^  ${escapeRegExp(bad)} \\(document 2\\): spec\\.containers\\[0\\]\\.ports\\[0\\]: must match pattern`),
        ),
      );
    }
    expect(await apps(hub)).toEqual(before);
    expect((await http(hub.url, 'GET', '/api/v1/apps/good-one')).status).toBe(404);
  });

  it('a missing secret refuses the whole set, named by file and document', async () => {
    const root = scratchDir('flotilla-gitops-secret-');
    write(root, {
      'apps.yaml': `${app('ok-app', 'nginx:1.27')}---\n${app('needs-secret', 'nginx:1.27', '      env: [{ name: TOKEN, fromSecret: absent-token }]\n')}`,
    });
    const result = await flotilla(hub, ['apply', '-f', root]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `  ${join(root, 'apps.yaml')} (document 2): spec.containers[0].env[0].fromSecret: secret "absent-token" does not exist: set it first (flotilla secret set absent-token …)`,
    );
    expect((await http(hub.url, 'GET', '/api/v1/apps/ok-app')).status).toBe(404);
  });
});

describe('a hub made by hand moves into git', SLOW, () => {
  it('export --dir, then apply --prune from it: every app unchanged, no revision, nothing deleted, and diff exits 0', async () => {
    // Apps made over the years by hand: several revisions, key orders of their own, and one through the HTTP API.
    const hand = scratchDir('flotilla-by-hand-');
    write(hand, {
      'gateway.yaml': app('gateway', 'reg.local/gw:1', '      env: [{ name: MODE, value: "a: b" }]\n'),
      'gateway2.yaml': app('gateway', 'reg.local/gw:2', '      env: [{ name: MODE, value: "a: b" }]\n'),
      'kiosk.yaml': `spec:\n  update: { strategy: download-then-kill, minReadySeconds: 5 }\n  containers:\n    - image: reg.local/kiosk:3\n      name: kiosk\n      command: [sh, -c, "echo 'hi'\\nsleep 100"]\n      ports: ["80"]\nname: kiosk\nscheduling: { devices: [pi-1, pi-2] }\n`,
    });
    for (const file of ['gateway.yaml', 'gateway2.yaml', 'kiosk.yaml'])
      expect((await flotilla(byHand, ['apply', '-f', join(hand, file)])).code).toBe(0);
    const viaApi: AppSpec = {
      scheduling: { selectors: { 'example.com/zone': 'b' } },
      name: 'sensor',
      spec: { containers: [{ name: 'read', image: 'reg.local/sensor:1', resources: { memory: '64m', cpus: 0.5 }, labels: { team: 'x' } }] },
    };
    expect((await http(byHand.url, 'POST', '/api/v1/apps', viaApi)).status).toBe(200);
    const before = await apps(byHand);
    expect(before).toEqual({ gateway: 2, kiosk: 1, sensor: 1 });
    const histories = await Promise.all(Object.keys(before).map((name) => history(byHand, name)));

    const out = join(scratchDir('flotilla-export-'), 'fleet');
    write(out, { 'keep-me.txt': 'an unrelated file', 'kiosk.yaml': `# an old copy\n${app('kiosk', 'reg.local/kiosk:1')}` });
    const exported = await flotilla(byHand, ['export', '--dir', out]);
    expect(exported).toEqual({
      code: 0,
      stdout: [
        `app/gateway written to ${join(out, 'gateway.yaml')} (revision 2)`,
        `app/kiosk written to ${join(out, 'kiosk.yaml')} (revision 1)`,
        `app/sensor written to ${join(out, 'sensor.yaml')} (revision 1)`,
        '',
      ].join('\n'),
      stderr: '',
    });
    expect(readdirSync(out).sort()).toEqual(['gateway.yaml', 'keep-me.txt', 'kiosk.yaml', 'sensor.yaml']);
    expect(readFileSync(join(out, 'keep-me.txt'), 'utf8')).toBe('an unrelated file');
    // The file holds the spec exactly as applied, keys in the order they were written.
    expect(readFileSync(join(out, 'kiosk.yaml'), 'utf8').startsWith('spec:\n  update:\n')).toBe(true);

    const applied = await flotilla(byHand, ['apply', '-f', out, '--prune', '--prune-scope', 'fleet']);
    expect(applied).toEqual({
      code: 0,
      // No revision, nothing deleted: the hand-made apps only join the scope, and the apply says so.
      stdout: [
        'app/gateway unchanged (revision 2) (joins scope fleet)',
        'app/kiosk unchanged (revision 1) (joins scope fleet)',
        'app/sensor unchanged (revision 1) (joins scope fleet)',
        '',
      ].join('\n'),
      stderr: '',
    });
    expect(await apps(byHand)).toEqual(before);
    expect(await Promise.all(Object.keys(before).map((name) => history(byHand, name)))).toEqual(histories);
    expect((await detail(byHand, 'kiosk')).scope).toBe('fleet');

    expect(await flotilla(byHand, ['diff', '-f', out, '--prune', '--prune-scope', 'fleet'])).toEqual({
      code: 0,
      stdout: 'app/gateway unchanged\napp/kiosk unchanged\napp/sensor unchanged\n',
      stderr: '',
    });
  });

  it('export on stdout is the specs as --- separated documents, and an unknown app is not found', async () => {
    const one = await flotilla(byHand, ['export', 'sensor', 'gateway']);
    expect(one.code).toBe(0);
    const docs = one.stdout.split(/^---\n/m);
    expect(docs).toHaveLength(2);
    expect(docs[0]).toMatch(/^scheduling:\n/);
    expect(docs[1]).toMatch(/^name: gateway\n/);
    const json = await flotilla(byHand, ['-o', 'json', 'export', 'sensor']);
    expect(JSON.parse(json.stdout)).toEqual({
      scheduling: { selectors: { 'example.com/zone': 'b' } },
      name: 'sensor',
      spec: { containers: [{ name: 'read', image: 'reg.local/sensor:1', resources: { memory: '64m', cpus: 0.5 }, labels: { team: 'x' } }] },
    });
    expect(await flotilla(byHand, ['export', 'sensor', 'nope'])).toEqual({ code: 3, stdout: '', stderr: 'error: app "nope" not found\n' });
  });

  it("export --unscoped into the team's folder writes each app where it is defined, and diff then exits 0", async () => {
    // The hub holds the apps of scope fleet (above), another team's, and three made by hand.
    const made = scratchDir('flotilla-more-by-hand-');
    write(made, {
      'team.yaml': app('team-a', 'reg.local/team:1'),
      'loose.yaml': [app('loose-1', 'reg.local/l1:1'), app('loose-2', 'reg.local/l2:1'), app('loose-3', 'reg.local/l3:2')].join('---\n'),
    });
    expect((await flotilla(byHand, ['apply', '-f', join(made, 'team.yaml'), '--prune-scope', 'team'])).code).toBe(0);
    expect((await flotilla(byHand, ['apply', '-f', join(made, 'loose.yaml')])).code).toBe(0);

    // The team's folder already has them, under other names: two in one file, one in a file of its own, out of date.
    const folder = join(scratchDir('flotilla-team-'), 'apps');
    const both = join(folder, 'monitoring/both.yaml');
    const renamed = join(folder, 'renamed.yml');
    write(folder, {
      'monitoring/both.yaml': `# loose-1 and loose-2 together\n${app('loose-1', 'reg.local/l1:1')}---\n${app('loose-2', 'reg.local/l2:0')}`,
      'renamed.yml': `# loose-3, by hand\n${app('loose-3', 'reg.local/l3:1')}`,
    });
    const bothBefore = readFileSync(both, 'utf8');

    const exported = await flotilla(byHand, ['export', '--unscoped', '--dir', folder]);
    expect(exported).toEqual({
      code: 0,
      stdout: `app/loose-3 written to ${renamed} (revision 1)\n`,
      stderr: [
        `note: app/loose-1 not written: ${both} defines it beside other apps: put its spec there by hand (flotilla export loose-1 prints it)`,
        `note: app/loose-2 not written: ${both} defines it beside other apps: put its spec there by hand (flotilla export loose-2 prints it)`,
        '',
      ].join('\n'),
    });
    // No second file for any app, none for the apps of a scope, and the shared file as it was.
    expect(readdirSync(folder).sort()).toEqual(['monitoring', 'renamed.yml']);
    expect(readFileSync(both, 'utf8')).toBe(bothBefore);
    expect(readFileSync(renamed, 'utf8')).toContain('image: reg.local/l3:2');

    // loose-2 is out of date in the shared file, which diff shows; put right by hand, the folder is what runs.
    const stale = await flotilla(byHand, ['diff', '-f', folder, '--prune', '--prune-scope', 'shop2']);
    expect(stale.code).toBe(1);
    expect(stale.stdout).toContain('app/loose-2 changed (revision 1 → 2)');
    writeFileSync(both, bothBefore.replace('reg.local/l2:0', 'reg.local/l2:1'));
    expect(await flotilla(byHand, ['diff', '-f', folder, '--prune', '--prune-scope', 'shop2'])).toEqual({
      code: 0,
      stdout:
        'app/loose-1 unchanged (joins scope shop2)\napp/loose-2 unchanged (joins scope shop2)\napp/loose-3 unchanged (joins scope shop2)\n',
      stderr: '',
    });
  });
});

describe('keys', SLOW, () => {
  it('a viewer key may diff and dry-run a folder (apps.plan) but not apply it; an operator key applies it', async () => {
    const guarded = await startHubProcess(undefined, ['--anonymous', 'deny']);
    const admin = readFileSync(join(guarded.dataDir, 'admin.key'), 'utf8').trim();
    const key = async (role: string) => {
      const created = await flotilla(guarded, ['--token', admin, 'serviceaccount', 'create', `ci-${role}`, '--role', role]);
      expect(created.code, created.stderr).toBe(0);
      return created.stdout.trim();
    };
    const [viewer, operator] = [await key('viewer'), await key('operator')];
    const root = scratchDir('flotilla-gitops-keys-');
    write(root, { 'web.yaml': app('web', 'nginx:1.27') });

    const diff = await flotilla(guarded, ['--token', viewer, 'diff', '-f', root, '--prune', '--prune-scope', 'shop']);
    expect(diff).toMatchObject({ code: 1, stderr: '' });
    expect(diff.stdout).toMatch(/^app\/web created\n/);
    const dry = await flotilla(guarded, ['--token', viewer, 'apply', '-f', root, '--dry-run', '--prune-scope', 'shop']);
    expect(dry).toMatchObject({ code: 0, stdout: 'app/web created (revision 1) (dry run)\n  devices: none selected now\n', stderr: '' });
    const refused = await flotilla(guarded, ['--token', viewer, 'apply', '-f', root, '--prune', '--prune-scope', 'shop']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^error: the hub refused the request: .*the token's role may not do this/);
    expect((await http(guarded.url, 'GET', '/api/v1/apps', undefined, { authorization: `Bearer ${admin}` })).body.items).toEqual([]);
    const noKey = await flotilla(guarded, ['diff', '-f', root]);
    expect(noKey.code).toBe(4);

    const applied = await flotilla(guarded, ['--token', operator, 'apply', '-f', root, '--prune', '--prune-scope', 'shop']);
    expect(applied).toEqual({ code: 0, stdout: 'app/web created (revision 1)\n', stderr: '' });
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
