/**
 * docs/reference/mqtt.md and http.md hold blocks rendered from the API
 * declaration: each must be what the generator renders now, and what it
 * renders must show every declared method with its role, route and params.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TObject } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import {
  API_REFERENCE_COMMAND,
  API_REFERENCE_FILES,
  GENERATED_END,
  GENERATED_START,
  generatedBlock,
  methodAnchor,
  renderMethodReference,
  renderRouteTable,
  withGeneratedBlock,
} from '../../cli/api-reference.js';
import { API, API_METHOD_NAMES, API_ROLES } from '../../shared/index.js';
import { REPO_ROOT } from '../support/processes.js';

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The `### name` section of the method reference, up to the next one. */
function methodSection(reference: string, name: string): string | undefined {
  return reference
    .split(/^(?=### )/m)
    .find((section) => section.startsWith(`### ${name}\n`))
    ?.trimEnd();
}

/** The table row of `param` in a section (cells trimmed), or undefined. */
function paramRow(section: string, param: string): string[] | undefined {
  const line = section.split('\n').find((l) => l.startsWith(`| \`${param}\` `));
  return line
    ?.slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

describe('API reference', () => {
  it.each(API_REFERENCE_FILES.map(({ file, render }) => ({ file, render })))(
    'the committed $file holds what the generator renders from the declaration',
    ({ file, render }) => {
      const committed = readFileSync(join(REPO_ROOT, file), 'utf8');
      expect(
        generatedBlock(committed, file),
        `${file} is out of date with shared/api/methods.ts: run \`${API_REFERENCE_COMMAND}\` and commit it`,
      ).toBe(render());
    },
  );

  it('gives every declared method a section with its role, route and a row per param, required or not as declared', () => {
    const reference = renderMethodReference();
    for (const name of API_METHOD_NAMES) {
      const { role, http } = API[name];
      const params: TObject = API[name].params;
      const section = methodSection(reference, name);
      expect(section, name).toBeDefined();
      expect(section).toContain(`Role: ${role} · HTTP \`${http.method} ${http.path}`);
      const declared = Object.keys(params.properties);
      if (declared.length === 0) expect(section).toContain('No params.');
      for (const param of declared) {
        const row = paramRow(section!, param);
        expect(row, `${name}: ${param}`).toBeDefined();
        expect(row![2], `${name}: ${param} required`).toBe(params.required?.includes(param) === true ? 'yes' : 'no');
        const pattern: unknown = params.properties[param]?.pattern;
        if (typeof pattern === 'string') expect(row![4]).toContain(`matches \`${pattern.replaceAll('|', '\\|')}\``);
      }
    }
    expect(reference.match(/^### /gm)).toHaveLength(API_METHOD_NAMES.length);
  });

  it('renders bounds, allowed values and where each param travels over HTTP', () => {
    const reference = renderMethodReference();
    const tokens = methodSection(reference, 'tokens.create')!;
    expect(paramRow(tokens, 'maxUses')?.slice(1, 5)).toEqual(['integer', 'no', 'body', '1–1,000,000']);
    const account = methodSection(reference, 'serviceaccounts.create')!;
    expect(paramRow(account, 'role')?.[4]).toBe(`one of ${API_ROLES.map((r) => `\`${r}\``).join(', ')}`);
    const logs = methodSection(reference, 'logs.query')!;
    expect(paramRow(logs, 'device')?.[3]).toBe('path');
    expect(paramRow(logs, 'tail')?.[3]).toBe('query');
    expect(methodSection(reference, 'apps.apply')).toContain('the body is `spec`');
  });

  it('lists every method in the route table once, in declaration order, linked to its section', () => {
    const rows = renderRouteTable().split('\n').slice(2);
    expect(rows).toHaveLength(API_METHOD_NAMES.length);
    API_METHOD_NAMES.forEach((name, i) => {
      const { method, path } = API[name].http;
      expect(rows[i]).toMatch(
        new RegExp(
          `^\\| ${literal(`\`${method} ${path}\``)} +\\| ${literal(`[\`${name}\`](mqtt.md#${methodAnchor(name)})`)} +\\| ${API[name].role} `,
        ),
      );
    });
    expect(methodAnchor('serviceaccounts.create')).toBe('serviceaccountscreate');
  });

  it('replaces only the text between the markers, and refuses a document without them', () => {
    const document = `# Title\n\nprose before\n\n${GENERATED_START}\n\nstale\n\n${GENERATED_END}\n\nprose after\n`;
    expect(withGeneratedBlock(document, 'fresh')).toBe(
      `# Title\n\nprose before\n\n${GENERATED_START}\n\nfresh\n\n${GENERATED_END}\n\nprose after\n`,
    );
    expect(() => withGeneratedBlock('# Title\n', 'fresh', 'docs/x.md')).toThrow(/docs\/x\.md must hold/);
    expect(() => generatedBlock(`${document}${GENERATED_START}\n`)).toThrow(/once/);
  });
});
