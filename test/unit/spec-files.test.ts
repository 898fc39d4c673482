/**
 * The spec set loader of `apply -f` and `diff -f` on real folders in a temp
 * dir (no hub): which files a folder gives and in what order, several
 * documents per file, and every problem reported at once with its file,
 * document and field, so nothing partial is ever sent.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HubError } from '../../cli/client.js';
import type { CliIO } from '../../cli/context.js';
import { CliError, EXIT_INVALID_INPUT } from '../../cli/errors.js';
import { InvalidSpecsError, loadSpecSet, locateHubIssues } from '../../cli/spec-files.js';
import { scratchDir } from '../support/scratch.js';

function io(stdin = ''): CliIO {
  return {
    stdout: () => {},
    stderr: () => {},
    readStdin: async () => stdin,
    readFile: (path) => readFile(path, 'utf8'),
    fetch: async () => {
      throw new Error('the hub must not be contacted');
    },
  };
}

function app(name: string, image = `registry.local/${name}:1`): string {
  return `name: ${name}\nscheduling: { selectors: { site: roof } }\nspec:\n  containers:\n    - name: main\n      image: ${image}\n`;
}

/** Writes `files` (path → text) under a new temp dir and returns the dir. */
function tree(files: Record<string, string>): string {
  const root = scratchDir('flotilla-specs-');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** The problems of a load that must fail, one line each (details indented below their problem). */
async function problems(paths: string[], stdin = ''): Promise<string[]> {
  const err = await loadSpecSet(io(stdin), paths).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidSpecsError);
  expect((err as InvalidSpecsError).exitCode).toBe(EXIT_INVALID_INPUT);
  return [...(err as InvalidSpecsError).problems];
}

describe('a folder', () => {
  it('is walked recursively in sorted order for *.yaml, *.yml and *.json, skipping dot-files and dot-folders', async () => {
    const root = tree({
      'b.yml': app('bravo'),
      'a.yaml': app('alpha'),
      'sub/c.json': JSON.stringify({
        name: 'charlie',
        scheduling: { devices: ['pi-1'] },
        spec: { containers: [{ name: 'c', image: 'c:1' }] },
      }),
      'sub/deeper/d.yaml': app('delta'),
      'notes.txt': 'not a spec',
      'README.md': '# not a spec',
      '.hidden.yaml': app('hidden-file'),
      '.git/config.yaml': app('in-git'),
      '.github/workflows/deploy.yaml': 'on: push\n',
    });
    const set = await loadSpecSet(io(), [root]);
    expect(set.specs.map((s) => s.name)).toEqual(['alpha', 'bravo', 'charlie', 'delta']);
    expect(set.sources).toEqual([join(root, 'a.yaml'), join(root, 'b.yml'), join(root, 'sub/c.json'), join(root, 'sub/deeper/d.yaml')]);
  });

  it('names the documents of a file that holds several, and keeps their order', async () => {
    const root = tree({ 'apps.yaml': `---\n${app('one')}---\n# a comment only\n---\n${app('two')}---\n${app('three')}` });
    const set = await loadSpecSet(io(), [root]);
    expect(set.specs.map((s) => s.name)).toEqual(['one', 'two', 'three']);
    const file = join(root, 'apps.yaml');
    expect(set.sources).toEqual([`${file} (document 1)`, `${file} (document 2)`, `${file} (document 3)`]);
    expect(set.fromCompose).toEqual([false, false, false]);
  });

  it("marks which specs came from a Compose file, so the hub's issues can name its services", async () => {
    const root = tree({
      'a.yaml': app('alpha'),
      'shop/docker-compose.yml':
        'x-flotilla: { name: shop, scheduling: { selectors: { site: lab } } }\nservices:\n  web:\n    image: nginx:1.27\n',
    });
    const set = await loadSpecSet(io(), [root]);
    expect(set.specs.map((s) => s.name)).toEqual(['alpha', 'shop']);
    expect(set.fromCompose).toEqual([false, true]);
  });

  it('takes files, folders and stdin together, in the order of -f', async () => {
    const root = tree({ 'folder/x.yaml': app('x'), 'single.yaml': app('single') });
    const set = await loadSpecSet(io(app('piped')), [join(root, 'single.yaml'), '-', join(root, 'folder')]);
    expect(set.specs.map((s) => s.name)).toEqual(['single', 'piped', 'x']);
    expect(set.sources).toEqual([join(root, 'single.yaml'), '<stdin>', join(root, 'folder/x.yaml')]);
  });

  it('follows a symbolic link to a folder inside it, and walks a loop of them once', async () => {
    const root = tree({ 'real/a.yaml': app('a'), 'real/sub/b.yaml': app('b') });
    symlinkSync(join(root, 'real'), join(root, 'linked'));
    symlinkSync(join(root, 'real'), join(root, 'real/sub/loop'));
    expect((await loadSpecSet(io(), [join(root, 'linked')])).specs.map((s) => s.name)).toEqual(['a', 'b']);
    // A link to a spec file inside is followed too: b is then named twice.
    symlinkSync(join(root, 'real/sub/b.yaml'), join(root, 'real/also-b.yml'));
    expect(await problems([join(root, 'real')])).toEqual([
      `${join(root, 'real/sub/b.yaml')}: app "b" is also defined in ${join(root, 'real/also-b.yml')}: each app may be named once in the set`,
    ]);
  });

  it('refuses a symbolic link that leads out of the folder, naming it, instead of reading what is there', async () => {
    const root = tree({ 'apps/a.yaml': app('a'), 'elsewhere/x.yaml': app('x'), 'unrelated/broken.yaml': 'name: [\n' });
    const apps = join(root, 'apps');
    symlinkSync(root, join(apps, 'loop'));
    symlinkSync(join(root, 'elsewhere/x.yaml'), join(apps, 'x.yaml'));
    symlinkSync(join(root, 'elsewhere'), join(apps, 'notes.txt')); // not a spec name, but a folder: still refused
    const outside = (link: string, target: string) =>
      `${join(apps, link)}: a symbolic link to ${target}, outside ${apps}: only links inside the folder are followed; give the target its own -f, or move its specs into the folder`;
    expect(await problems([apps])).toEqual([
      outside('loop', root),
      outside('notes.txt', join(root, 'elsewhere')),
      outside('x.yaml', join(root, 'elsewhere/x.yaml')),
    ]);
    // A link to something that is not a spec is no business of the set's.
    const quiet = tree({ 'apps/a.yaml': app('a'), 'README.md': '# x' });
    symlinkSync(join(quiet, 'README.md'), join(quiet, 'apps/README.md'));
    expect((await loadSpecSet(io(), [join(quiet, 'apps')])).specs.map((s) => s.name)).toEqual(['a']);
  });

  it('holding no spec is an error, so an empty checkout never prunes a fleet', async () => {
    const empty = tree({});
    expect(await problems([empty])).toEqual([
      `${empty}: no app spec found in the folder (it reads .yaml, .yml, .json files; dot-files and dot-folders are skipped)`,
    ]);
    const onlyOthers = tree({ 'README.md': 'x', '.git/a.yaml': app('a'), 'empty.yaml': '# nothing here\n' });
    expect(await problems([onlyOthers])).toEqual([
      `${onlyOthers}: no app spec found in the folder (it reads .yaml, .yml, .json files; dot-files and dot-folders are skipped)`,
    ]);
  });
});

describe('problems', () => {
  it('are all reported at once, each with its file, document and field path', async () => {
    const root = tree({
      'apps/web.yaml': `${app('web')}---\n${app('Api').replace('registry.local/Api:1', '[1]')}`,
      'apps/db.yaml': 'name: db\n',
      'apps/broken.yaml': 'name: [\n',
      'apps/ok.yaml': app('ok'),
    });
    const lines = await problems([join(root, 'apps')]);
    const at = (file: string) => join(root, 'apps', file);
    expect(lines).toContain(`${at('db.yaml')}: scheduling: is required`);
    expect(lines).toContain(`${at('db.yaml')}: spec: is required`);
    expect(lines).toContain(`${at('web.yaml')} (document 2): spec.containers[0].image: must be string`);
    expect(lines.some((line) => line.startsWith(`${at('web.yaml')} (document 2): name: must match pattern`))).toBe(true);
    expect(lines).toContain(`${at('broken.yaml')}: not valid YAML or JSON`);
    // The parser's own explanation follows its line, indented under it.
    const broken = lines.indexOf(`${at('broken.yaml')}: not valid YAML or JSON`);
    expect(lines[broken + 1]).toMatch(/^ {2}\S/);
    expect(lines.filter((line) => line.includes('ok.yaml'))).toEqual([]);
  });

  it('print as the error itself when there is one, and listed under their count when there are several', () => {
    expect(new InvalidSpecsError(['a.yaml: not valid YAML or JSON', '  at line 1']).format()).toBe(
      'error: a.yaml: not valid YAML or JSON\n  at line 1\n',
    );
    expect(new InvalidSpecsError(['a.yaml: not valid YAML or JSON', '  at line 1', 'b.yaml: spec: is required']).format()).toBe(
      'error: 2 problems in the specs: nothing was sent to the hub\n  a.yaml: not valid YAML or JSON\n    at line 1\n  b.yaml: spec: is required\n',
    );
  });

  it('a file that is missing, or empty when named on its own, is a problem among the others', async () => {
    const root = tree({ 'empty.yaml': '# nothing\n', 'bad.yaml': 'name: bad\n' });
    const lines = await problems([join(root, 'missing.yaml'), join(root, 'empty.yaml'), join(root, 'bad.yaml')]);
    expect(lines).toEqual([
      `${join(root, 'missing.yaml')}: no such file`,
      `${join(root, 'empty.yaml')}: no app spec found`,
      `${join(root, 'bad.yaml')}: scheduling: is required`,
      `${join(root, 'bad.yaml')}: spec: is required`,
    ]);
  });

  it('the same app in two places is an error naming both', async () => {
    const root = tree({ 'a.yaml': app('web'), 'team/b.yaml': `${app('other')}---\n${app('web', 'nginx:2')}` });
    expect(await problems([root])).toEqual([
      `${join(root, 'team/b.yaml')} (document 2): app "web" is also defined in ${join(root, 'a.yaml')}: each app may be named once in the set`,
    ]);
  });

  it('a job spec is told to go to flotilla run -f', async () => {
    const job =
      'name: backup\nscheduling: { selectors: {} }\nspec:\n  containers:\n    - name: backup\n      image: busybox:1.36\n  timeout: 10m\n';
    const root = tree({ 'jobs/backup.yaml': job, 'web.yaml': app('web') });
    expect(await problems([root])).toEqual([
      `${join(root, 'jobs/backup.yaml')}: a job spec, not an app spec: run it with flotilla run -f ${join(root, 'jobs/backup.yaml')} (one job per file)`,
    ]);
  });
});

describe('Compose files', () => {
  it('--name with several of them says to name each with x-flotilla.name, which docker-compose 1.29 takes', async () => {
    const compose = 'services:\n  web:\n    image: nginx:1.27\n';
    const root = tree({ 'a/docker-compose.yml': compose, 'b/docker-compose.yml': compose });
    const err = await loadSpecSet(io(), [root], { name: 'one', scheduling: { devices: ['gw-1'] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidSpecsError);
    expect((err as InvalidSpecsError).problems).toContain(
      '--name names one app, and the set holds 2 Compose files: leave it out and give each file its own x-flotilla: {name: APP} (docker-compose 1.29 refuses a top-level name:)',
    );
  });
});

describe('a Compose override file', () => {
  it('is one problem of its own, and not counted as a second Compose file against --name', async () => {
    const root = tree({
      'docker-compose.yml': 'services:\n  web:\n    image: nginx:1.27\n',
      'docker-compose.override.yml': 'services:\n  web:\n    environment: { DEBUG: "1" }\n',
    });
    const err = await loadSpecSet(io(), [root], { name: 'shop', scheduling: { devices: ['gw-1'] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidSpecsError);
    const lines = (err as InvalidSpecsError).problems.filter((line) => !line.startsWith(' '));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${join(root, 'docker-compose.override.yml')}: .*override`));
  });
});

describe("the hub's issues about specs[i]", () => {
  it('are named as the loader names each document', () => {
    const sources = ['apps/web.yaml', 'apps/all.yaml (document 2)'];
    const refused = new HubError(400, 'invalid_spec', 'invalid app specs', {
      issues: [
        { path: 'specs[1].spec.containers[0].env[0].fromSecret', message: 'secret "db" does not exist' },
        { path: 'specs[1].name', message: 'duplicate app name "web": also specs[0]' },
        { path: 'specs[0]', message: 'app "web" is recorded with scope other-team' },
        { path: 'scope', message: 'must match pattern' },
      ],
    });
    const located = locateHubIssues(refused, { specs: [], sources }) as CliError;
    expect(located).toBeInstanceOf(CliError);
    expect(located.exitCode).toBe(EXIT_INVALID_INPUT);
    expect(located.format()).toBe(
      [
        'error: invalid app specs',
        '  apps/all.yaml (document 2): spec.containers[0].env[0].fromSecret: secret "db" does not exist: set it first (flotilla secret set db …)',
        '  apps/all.yaml (document 2): name: duplicate app name "web": also apps/web.yaml',
        '  apps/web.yaml: app "web" is recorded with scope other-team',
        '  scope: must match pattern',
        '',
      ].join('\n'),
    );
  });

  it("name a Compose file's service where the spec was converted from one", () => {
    const shop = {
      name: 'shop',
      scheduling: { selectors: { site: 'lab' } },
      spec: {
        initContainers: [{ name: 'migrate', image: 'reg/m:1' }],
        containers: [
          { name: 'db', image: 'reg/db:1' },
          { name: 'web', image: 'reg/web:1', secrets: [{ name: 'nokey' }] },
        ],
      },
    };
    const refused = new HubError(400, 'invalid_spec', 'invalid app specs', {
      issues: [
        { path: 'specs[1].spec.containers[1].secrets[0].name', message: 'secret "nokey" does not exist' },
        { path: 'specs[1].spec.initContainers[0].env[0].fromSecret', message: 'secret "db-url" does not exist' },
        { path: 'specs[1].scheduling', message: 'selects no device' },
        { path: 'specs[0].spec.containers[1].image', message: 'is wrong' },
      ],
    });
    const set = { specs: [shop, shop], sources: ['apps/web.yaml', 'shop/docker-compose.yml'], fromCompose: [false, true] };
    expect((locateHubIssues(refused, set) as CliError).format()).toBe(
      [
        'error: invalid app specs',
        '  shop/docker-compose.yml: services.web (as spec.containers[1].secrets[0].name): secret "nokey" does not exist: set it first (flotilla secret set nokey …)',
        '  shop/docker-compose.yml: services.migrate (as spec.initContainers[0].env[0].fromSecret): secret "db-url" does not exist: set it first (flotilla secret set db-url …)',
        '  shop/docker-compose.yml: scheduling: selects no device',
        '  apps/web.yaml: spec.containers[1].image: is wrong',
        '',
      ].join('\n'),
    );
  });

  it('leave any other error as it was', () => {
    const conflict = new HubError(409, 'conflict', 'the prune set changed');
    expect(locateHubIssues(conflict, { specs: [], sources: ['a.yaml'] })).toBe(conflict);
    const other = new Error('boom');
    expect(locateHubIssues(other, { specs: [], sources: ['a.yaml'] })).toBe(other);
  });
});
