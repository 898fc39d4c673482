/**
 * `apply`, `diff` and `export` in-process against a stand-in hub that
 * records each request (the real hub is test/integration/gitops-cli.test.ts):
 * what is sent in which order — a prune's plan and then exactly its list as
 * `expectPruned` —, what is refused before anything is sent, the dry run's
 * lines, and diff's exit codes for each kind of failure.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIO } from '../../cli/context.js';
import { EXIT_DIFF_FAILED, EXIT_INVALID_INPUT, EXIT_NOT_FOUND, EXIT_OK, EXIT_UNAUTHORIZED } from '../../cli/errors.js';
import type { AppliedApp, ApplyAllResult } from '../../shared/api/results.js';
import { type InProcessRun, jsonResponse, runCliInProcess } from '../support/cli-in-process.js';
import { appliedApp } from '../support/fixtures.js';
import { scratchDir } from '../support/scratch.js';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  /** `METHOD /path` and the parsed body of each request, in order. */
  requests: { route: string; body: any }[];
}

const SPEC = (name: string) =>
  `name: ${name}\nscheduling: { selectors: {} }\nspec:\n  containers: [{ name: main, image: "busybox:1.36" }]\n`;

async function cli(
  args: string[],
  respond?: (body: any, route: string) => Response,
  stdin = `${SPEC('web')}---\n${SPEC('api')}`,
): Promise<Captured> {
  const requests: Captured['requests'] = [];
  const fetch: CliIO['fetch'] = async (input, init) => {
    const route = `${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`;
    const body = init?.body === undefined ? undefined : JSON.parse(String(init.body));
    requests.push({ route, body });
    if (!respond) throw new Error('the hub must not be contacted');
    return respond(body, route);
  };
  return { ...(await runCliInProcess(args, { stdin, fetch })), requests };
}

const json = jsonResponse;

function item(name: string, action: AppliedApp['action'], revision: number, fields: Partial<AppliedApp> = {}): AppliedApp {
  return appliedApp(name, action, {
    revision,
    previousRevision: action === 'created' ? null : action === 'configured' ? revision - 1 : revision,
    scope: 'shop',
    previousScope: action === 'created' ? null : 'shop',
    ...fields,
  });
}

describe('apply', () => {
  it('--prune without --prune-scope is a usage error, and nothing is sent', async () => {
    const result = await cli(['apply', '-f', '-', '--prune']);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.stderr).toMatch(/^error: --prune needs --prune-scope NAME/);
    expect(result.requests).toEqual([]);
    const diff = await cli(['diff', '-f', '-', '--prune']);
    expect(diff.code).toBe(EXIT_INVALID_INPUT);
    expect(diff.requests).toEqual([]);
  });

  it('--prune asks for a dry run first, lists the apps it will delete, then applies expecting exactly them', async () => {
    const pruned = [
      { name: 'old', revision: 3, scope: 'shop' },
      { name: 'older', revision: 1, scope: 'shop' },
    ];
    const result = await cli(['apply', '-f', '-', '--prune', '--prune-scope', 'shop', '--source', 'git:abc'], (_body, route) =>
      json(200, {
        dryRun: route === 'POST /api/v1/plan',
        source: 'git:abc',
        items: [item('web', 'configured', 4), item('api', 'unchanged', 2)],
        pruned,
      } satisfies ApplyAllResult),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(EXIT_OK);
    expect(result.requests.map((r) => r.route)).toEqual(['POST /api/v1/plan', 'POST /api/v1/apply']);
    const [plan, apply] = result.requests.map((r) => r.body);
    expect(plan).toEqual({ specs: expect.any(Array), scope: 'shop', source: 'git:abc', prune: true });
    expect(apply).toEqual({ specs: plan.specs, scope: 'shop', source: 'git:abc', prune: true, expectPruned: ['old', 'older'] });
    expect(plan.specs.map((s: { name: string }) => s.name)).toEqual(['web', 'api']);
    expect(result.stdout).toBe(
      [
        'pruning 2 apps of scope shop that the specs no longer name: app/old, app/older',
        'app/web configured (revision 4)',
        'app/api unchanged (revision 2)',
        'app/old pruned',
        'app/older pruned',
        '',
      ].join('\n'),
    );
  });

  it('says nothing was pruned when the hub refuses the set after the prune was announced', async () => {
    const result = await cli(['apply', '-f', '-', '--prune', '--prune-scope', 'shop'], (_body, route) =>
      route === 'POST /api/v1/plan'
        ? json(200, {
            dryRun: true,
            source: null,
            items: [item('web', 'unchanged', 1)],
            pruned: [{ name: 'old', revision: 3, scope: 'shop' }],
          })
        : json(403, { error: { code: 'forbidden', message: 'method "apps.applyAll" needs role operator; pr-check is viewer' } }),
    );
    expect(result.code).not.toBe(EXIT_OK);
    expect(result.stdout).toBe('pruning 1 app of scope shop that the specs no longer name: app/old\n');
    expect(result.stderr).toMatch(/^the hub refused the set: nothing was applied or pruned\nerror: .*needs role operator/);
  });

  it('with -o json prints only the apply answer on stdout, and the prune list on stderr', async () => {
    const answer = (body: any): ApplyAllResult => ({
      dryRun: body.dryRun === true,
      source: null,
      items: [item('web', 'unchanged', 1)],
      pruned: [{ name: 'old', revision: 3, scope: 'shop' }],
    });
    const result = await cli(['-o', 'json', 'apply', '-f', '-', '--prune', '--prune-scope', 'shop'], (body, route) =>
      json(200, answer({ ...body, dryRun: route === 'POST /api/v1/plan' })),
    );
    expect(JSON.parse(result.stdout)).toEqual(answer({}));
    expect(result.stderr).toBe('pruning 1 app of scope shop that the specs no longer name: app/old\n');
  });

  it('a dry run is one request and says per app what it would reach', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => `pi-${i + 1}`);
    const result = await cli(['apply', '-f', '-', '--dry-run', '--prune', '--prune-scope', 'shop'], () =>
      json(200, {
        dryRun: true,
        source: null,
        items: [
          item('web', 'configured', 5, { devices: { count: 7, ids }, secrets: ['db-password', 'tls'] }),
          item('api', 'unchanged', 2, { previousScope: null, devices: { count: 1, ids: ['pi-1'] } }),
        ],
        pruned: [{ name: 'old', revision: 3, scope: 'shop' }],
      } satisfies ApplyAllResult),
    );
    expect(result.requests.map((r) => r.route)).toEqual(['POST /api/v1/plan']);
    expect(result.requests[0]!.body).toEqual({ specs: expect.any(Array), scope: 'shop', prune: true });
    expect(result.stdout).toBe(
      [
        'app/web configured (revision 5) (dry run)',
        '  devices: 7 (pi-1, pi-2, pi-3, pi-4, pi-5, and 2 more)',
        '  secrets: db-password, tls',
        'app/api unchanged (revision 2) (dry run)',
        '  devices: 1 (pi-1)',
        '  scope: joins shop',
        'app/old pruned (dry run)',
        '',
      ].join('\n'),
    );
  });

  it('takes the source from FLOTILLA_SOURCE, and sends none when it is empty', async () => {
    const answer = json(200, { dryRun: false, source: null, items: [], pruned: [] });
    const saved = process.env.FLOTILLA_SOURCE;
    try {
      process.env.FLOTILLA_SOURCE = 'git:from-env';
      expect((await cli(['apply', '-f', '-'], () => answer.clone())).requests[0]!.body.source).toBe('git:from-env');
      expect((await cli(['apply', '-f', '-', '--source', 'git:flag'], () => answer.clone())).requests[0]!.body.source).toBe('git:flag');
      process.env.FLOTILLA_SOURCE = '';
      expect((await cli(['apply', '-f', '-'], () => answer.clone())).requests[0]!.body).not.toHaveProperty('source');
      process.env.FLOTILLA_SOURCE = 'has space';
      const bad = await cli(['apply', '-f', '-'], () => answer.clone());
      expect(bad.code).toBe(EXIT_INVALID_INPUT);
      expect(bad.stderr).toMatch(/^error: FLOTILLA_SOURCE="has space" is not a source: expected printable ASCII without spaces/);
      expect(bad.requests).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.FLOTILLA_SOURCE;
      else process.env.FLOTILLA_SOURCE = saved;
    }
  });
  it('refuses an empty --source as it refuses any other bad one, sending nothing', async () => {
    const rule = /expected printable ASCII without spaces, 1-256 characters/;
    for (const value of ['', 'a b']) {
      const refused = await cli(['apply', '-f', '-', '--source', value], () => json(200, {}));
      expect(refused.code).toBe(EXIT_INVALID_INPUT);
      expect(refused.stderr).toMatch(rule);
      expect(refused.requests).toEqual([]);
    }
  });
});

describe('a set larger than the hub reads', () => {
  /** 600 apps of about 16 KB each, 9.3 MiB as JSON: under the 1,000-app limit, over the 8 MiB one. */
  const big = Array.from(
    { length: 600 },
    (_, i) =>
      `name: app-${i}\nscheduling: { selectors: {} }\nspec:\n  containers:\n    - name: main\n      image: "busybox:1.36"\n      command: [sh, -c, "${'x'.repeat(16_000)}"]\n`,
  ).join('---\n');

  it('is refused by apply and diff before anything is sent, saying how to split it', async () => {
    for (const verb of ['apply', 'diff']) {
      const result = await cli([verb, '-f', '-'], () => json(200, {}), big);
      expect(result.code).toBe(EXIT_INVALID_INPUT);
      expect(result.stderr).toBe(
        'error: the specs are 9.3 MiB; one apply takes at most 8 MiB: split the folder into scopes (--prune-scope) and apply each\n',
      );
      expect(result.requests).toEqual([]);
    }
  });
});

describe("diff's exit codes", () => {
  const unchanged = () =>
    json(200, { dryRun: true, source: null, items: [item('web', 'unchanged', 1), item('api', 'unchanged', 1)], pruned: [] });

  it('0 for no change, 1 for a change, sending one dry run', async () => {
    const same = await cli(['diff', '-f', '-'], unchanged);
    expect(same).toMatchObject({ code: 0, stdout: 'app/web unchanged\napp/api unchanged\n', stderr: '' });
    expect(same.requests.map((r) => [r.route, r.body])).toEqual([['POST /api/v1/plan', { specs: expect.any(Array) }]]);
    const changed = await cli(['diff', '-f', '-'], () =>
      json(200, { dryRun: true, source: null, items: [item('web', 'created', 1), item('api', 'unchanged', 1)], pruned: [] }),
    );
    expect(changed.code).toBe(1);
    expect(changed.stderr).toBe('');
  });

  it('2 or more for every error, never 1', async () => {
    const invalid = await cli(['diff', '-f', '-'], undefined, 'name: web\n');
    expect(invalid.code).toBe(EXIT_INVALID_INPUT);
    const refused = await cli(['diff', '-f', '-'], () => json(401, { error: { code: 'unauthorized', message: 'no token' } }));
    expect(refused.code).toBe(EXIT_UNAUTHORIZED);
    const missing = await cli(['diff', '-f', '-'], () => json(404, { error: { code: 'not_found', message: 'no such route' } }));
    expect(missing.code).toBe(EXIT_NOT_FOUND);
    const conflict = await cli(['diff', '-f', '-'], () =>
      json(409, {
        error: { code: 'conflict', message: 'scope conflict', details: { issues: [{ path: 'specs[1].name', message: 'another scope' }] } },
      }),
    );
    expect(conflict).toMatchObject({
      code: EXIT_DIFF_FAILED,
      stderr: 'error: scope conflict\n  <stdin> (document 2): name: another scope\n',
    });
    const broken = await cli(['diff', '-f', '-'], () => new Response('oops', { status: 500 }));
    expect(broken.code).toBe(EXIT_DIFF_FAILED);
    const unreachable = await cli(['diff', '-f', '-'], () => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7070'), { code: 'ECONNREFUSED' }),
      });
    });
    expect(unreachable.code).toBe(EXIT_DIFF_FAILED);
    expect(unreachable.stderr).toMatch(/^error: cannot reach the hub at http:\/\/127\.0\.0\.1:7070: connect ECONNREFUSED/);
    const notJson = await cli(['diff', '-f', '-'], () => new Response('<html>', { status: 200 }));
    expect(notJson.code).toBe(EXIT_DIFF_FAILED);
  });
});

describe('export', () => {
  const exported = {
    items: [
      {
        name: 'api',
        revision: 2,
        scope: null,
        spec: { name: 'api', scheduling: { devices: ['pi-1'] }, spec: { containers: [{ name: 'a', image: 'a:1' }] } },
      },
      {
        name: 'web',
        revision: 5,
        scope: 'shop',
        spec: { spec: { containers: [{ name: 'w', image: 'w:1' }] }, name: 'web', scheduling: { selectors: {} } },
      },
    ],
  };

  it('asks for one scope when told, and refuses a name the hub lacks as not found', async () => {
    const some = await cli(['export', 'web', '--prune-scope', 'shop'], () => json(200, exported));
    expect(some.requests.map((r) => r.route)).toEqual(['GET /api/v1/app-specs']);
    expect(some.stdout).toBe('spec:\n  containers:\n    - name: w\n      image: w:1\nname: web\nscheduling:\n  selectors: {}\n');
    const unknown = await cli(['export', 'web', 'ghost', 'phantom', '--prune-scope', 'shop'], () => json(200, exported));
    expect(unknown).toMatchObject({
      code: EXIT_NOT_FOUND,
      stdout: '',
      stderr: 'error: app "ghost", app "phantom" not found in scope shop\n',
    });
  });

  /** `export ARGS --dir DIR` against the stand-in hub, reading and writing the real DIR; whether the hub was asked. */
  async function exportInto(dir: string, args: string[] = []): Promise<InProcessRun & { asked: boolean }> {
    let asked = false;
    const result = await runCliInProcess(['export', ...args, '--dir', dir], {
      fetch: async () => {
        asked = true;
        return json(200, exported);
      },
      io: { readFile: (path) => readFile(path, 'utf8') },
    });
    return { ...result, asked };
  }

  it('--unscoped writes only the apps without a scope, and with --prune-scope is a usage error', async () => {
    const dir = join(scratchDir('flotilla-export-'), 'out');
    expect(await exportInto(dir, ['--unscoped'])).toMatchObject({
      code: 0,
      stdout: `app/api written to ${join(dir, 'api.yaml')} (revision 2)\n`,
    });
    expect(readdirSync(dir)).toEqual(['api.yaml']);
    const both = await exportInto(dir, ['--unscoped', '--prune-scope', 'shop']);
    expect(both).toMatchObject({
      code: EXIT_INVALID_INPUT,
      stderr: 'error: --unscoped and --prune-scope each choose apps by scope: give one\n',
    });
    expect(both.asked).toBe(false);
    expect((await exportInto(dir, ['web', '--unscoped'])).stderr).toBe('error: app "web" not found without a scope\n');
  });

  it('writes an app back where it is defined, never over a file that defines other apps, and refuses a folder whose specs do not load', async () => {
    const dir = scratchDir('flotilla-export-');
    // api.yaml, the name export would give app api, holds app web; web is then defined, alone, in a file export rewrites.
    writeFileSync(join(dir, 'api.yaml'), SPEC('web'));
    const result = await exportInto(dir);
    expect(result).toMatchObject({
      code: 0,
      stdout: `app/web written to ${join(dir, 'api.yaml')} (revision 5)\n`,
      stderr: `note: app/api not written: ${join(dir, 'api.yaml')} defines app "web": move that file, or export this app elsewhere\n`,
    });
    expect(readdirSync(dir)).toEqual(['api.yaml']);
    expect(readFileSync(join(dir, 'api.yaml'), 'utf8')).toMatch(/^spec:\n {2}containers:\n {4}- name: w\n/);
    // A file that holds the app's spec already, in another layout, is left as it is, comments and all.
    const mine =
      '# web, in the team\'s own layout\nname: web\nscheduling: { selectors: {} }\nspec: { containers: [{ image: "w:1", name: w }] }\n';
    writeFileSync(join(dir, 'api.yaml'), mine);
    expect((await exportInto(dir, ['web'])).stdout).toBe(`app/web unchanged in ${join(dir, 'api.yaml')} (revision 5)\n`);
    expect(readFileSync(join(dir, 'api.yaml'), 'utf8')).toBe(mine);

    writeFileSync(join(dir, 'broken.yaml'), 'name: [\n');
    const refused = await exportInto(dir);
    expect(refused.code).toBe(EXIT_INVALID_INPUT);
    expect(refused.stderr).toMatch(
      new RegExp(`^error: ${dir} holds specs that do not load, so there is no telling which file defines which app`),
    );
    expect(refused.stderr).toContain(`${join(dir, 'broken.yaml')}: not valid YAML or JSON`);
    expect(refused.asked).toBe(false);
  });

  it('writes JSON documents separated by --- with -o json', async () => {
    const out = await cli(['-o', 'json', 'export'], () => json(200, exported));
    const docs = out.stdout.split('---\n').map((doc) => JSON.parse(doc));
    expect(docs).toEqual(exported.items.map((app) => app.spec));
  });
});
