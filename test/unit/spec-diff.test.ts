/**
 * What `flotilla diff` prints for a hub's dry-run answer (cli/spec-diff.ts),
 * and what `export` writes: a unified diff of the specs as YAML, the whole
 * spec for a new or deleted app, one line for an unchanged one, and YAML that
 * reads back as the spec it was written from.
 */
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { diffText, hasChanges, unifiedDiff } from '../../cli/spec-diff.js';
import { specYaml } from '../../cli/spec-yaml.js';
import type { AppliedApp, ApplyAllResult } from '../../shared/api/results.js';
import type { AppSpec } from '../../shared/schemas/spec.js';
import { appliedApp } from '../support/fixtures.js';

function spec(name: string, image: string, extra: Partial<AppSpec['spec']['containers'][number]> = {}): AppSpec {
  return { name, scheduling: { selectors: { site: 'roof' } }, spec: { containers: [{ name: 'main', image, ...extra }] } };
}

const item = appliedApp;

const dryRun = (items: AppliedApp[], pruned: ApplyAllResult['pruned'] = []): ApplyAllResult => ({
  dryRun: true,
  source: null,
  items,
  pruned,
});

describe('diff', () => {
  const current = spec('web', 'nginx:1.26', { env: [{ name: 'MODE', value: 'a' }], ports: ['8080:80'] });
  const edited = spec('web', 'nginx:1.27', { env: [{ name: 'MODE', value: 'a' }], ports: ['8080:80'] });
  const fresh = spec('new', 'busybox:1.36');
  const old = spec('old', 'redis:7');

  it('shows each app in order: a changed one as a unified diff, a new one as + lines, an unchanged one as one line, a deleted one as - lines', () => {
    const result = dryRun(
      [
        item('web', 'configured', { revision: 5, previousRevision: 4, current }),
        item('new', 'created'),
        item('same', 'unchanged', { revision: 3, previousRevision: 3 }),
      ],
      [{ name: 'old', revision: 2, scope: 'shop', current: old }],
    );
    const set = {
      specs: [edited, fresh, spec('same', 'x:1')],
      sources: ['apps/web.yaml', 'apps/all.yaml (document 1)', 'apps/all.yaml (document 2)'],
    };
    expect(diffText(result, set)).toBe(
      [
        'app/web changed (revision 4 → 5)',
        '--- app/web revision 4 (hub)',
        '+++ apps/web.yaml',
        '@@ -5,7 +5,7 @@',
        ' spec:',
        '   containers:',
        '     - name: main',
        '-      image: nginx:1.26',
        '+      image: nginx:1.27',
        '       env:',
        '         - name: MODE',
        '           value: a',
        'app/new created',
        '+name: new',
        '+scheduling:',
        '+  selectors:',
        '+    site: roof',
        '+spec:',
        '+  containers:',
        '+    - name: main',
        '+      image: busybox:1.36',
        'app/same unchanged',
        'app/old deleted',
        '-name: old',
        '-scheduling:',
        '-  selectors:',
        '-    site: roof',
        '-spec:',
        '-  containers:',
        '-    - name: main',
        '-      image: redis:7',
        '',
      ].join('\n'),
    );
    expect(hasChanges(result)).toBe(true);
  });

  it('hunks keep three lines of context and number both sides', () => {
    const long = (image: string): AppSpec => ({
      name: 'long',
      scheduling: { devices: ['pi-1'] },
      spec: { containers: [{ name: 'main', image, command: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'] }] },
    });
    const before = long('img:1');
    const after = {
      ...long('img:1'),
      spec: { containers: [{ ...long('img:1').spec.containers[0]!, command: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'J'] }] },
    };
    expect(unifiedDiff(before, 'hub', after, 'file')).toBe(
      ['--- hub', '+++ file', '@@ -16,4 +16,4 @@', '         - g', '         - h', '         - i', '-        - j', '+        - J', ''].join(
        '\n',
      ),
    );
    expect(unifiedDiff(before, 'hub', before, 'file')).toBe('');
  });

  it('shows only what changed when the file writes the same fields in another order', () => {
    const hub: AppSpec = {
      name: 'web',
      scheduling: { selectors: { site: 'roof' } },
      spec: {
        containers: [{ name: 'web', image: 'web:1', ports: ['80:80'], healthcheck: { tcp: 'localhost:80', interval: '5s' } }],
        update: { strategy: 'download-then-kill' },
      },
    };
    // A Compose export read back: the same fields, most in another order, and one real change.
    const file: AppSpec = {
      spec: {
        update: { strategy: 'download-then-kill' },
        containers: [{ healthcheck: { interval: '5s', tcp: 'localhost:80' }, ports: ['80:80'], image: 'web:2', name: 'web' }],
      },
      scheduling: { selectors: { site: 'roof' } },
      name: 'web',
    };
    const diff = unifiedDiff(hub, 'hub', file, 'file');
    expect(diff.split('\n').filter((line) => /^[-+][^-+]/.test(line))).toEqual(['-      image: web:1', '+      image: web:2']);
    expect(
      unifiedDiff(hub, 'hub', { ...file, spec: { ...file.spec, containers: [{ ...file.spec.containers[0]!, image: 'web:1' }] } }, 'file'),
    ).toBe('');
  });

  it('nothing created, changed or deleted is no change, even where an app joins the scope', () => {
    const result = dryRun([
      item('a', 'unchanged', { revision: 2, previousRevision: 2, scope: 'shop', previousScope: null }),
      item('b', 'unchanged', { revision: 7, previousRevision: 7, scope: 'shop', previousScope: 'shop' }),
    ]);
    expect(hasChanges(result)).toBe(false);
    expect(diffText(result, { specs: [], sources: [] })).toBe('app/a unchanged (joins scope shop)\napp/b unchanged\n');
    expect(hasChanges(dryRun([item('a', 'created')]))).toBe(true);
    expect(hasChanges(dryRun([], [{ name: 'gone', revision: 1, scope: 'shop' }]))).toBe(true);
  });
});

describe('specs written as YAML', () => {
  it('read back as the very same spec, keys in their order, whatever the strings hold', () => {
    const tricky: AppSpec = {
      spec: {
        containers: [
          {
            name: 'main',
            image: 'registry.local:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
            command: [
              'sh',
              '-c',
              `echo "a: b" && exit 0 # ${'long '.repeat(40)}`,
              'yes',
              'no',
              '0123',
              '1e3',
              'null',
              '~',
              '',
              ' lead',
              'trail ',
            ],
            env: [
              { name: 'MULTI', value: 'line one\nline two\n' },
              { name: 'NO_END', value: 'x\ny' },
              { name: 'COLON', value: '8080:80' },
              { name: 'TAB', value: 'a\tb' },
            ],
            ports: ['8080:80', '53:53/udp'],
          },
        ],
        update: { strategy: 'download-then-kill', minReadySeconds: 0 },
      },
      name: 'tricky',
      scheduling: { devices: ['pi-1', 'gw.0042'] },
    };
    const text = specYaml(tricky);
    const back = parse(text) as AppSpec;
    expect(back).toEqual(tricky);
    expect(JSON.stringify(back)).toBe(JSON.stringify(tricky));
    expect(text.split('\n').every((line) => line.length < 400)).toBe(true);
    // Several joined by `---` are that many documents, as apply reads them.
    const docs = parseAllDocuments([specYaml(tricky), specYaml(spec('b', 'b:1'))].join('---\n'));
    expect(docs.map((doc) => (doc.toJS() as AppSpec).name)).toEqual(['tricky', 'b']);
  });
});
