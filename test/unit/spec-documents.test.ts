/**
 * Reading spec files (cli/spec-documents.ts) as `apply -f` reads them, from a
 * real file through the spec set loader: YAML anchors, aliases and 1.1 merge
 * keys (`<<: *base`) expand as docker-compose expands them, the keys a mapping
 * writes itself winning over the merged ones.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIO } from '../../cli/context.js';
import { parseDocuments } from '../../cli/spec-documents.js';
import { loadSpecSet } from '../../cli/spec-files.js';
import { loadYaml } from '../../cli/yaml.js';
import { scratchDir } from '../support/scratch.js';

const io: CliIO = {
  stdout: () => {},
  stderr: () => {},
  readStdin: async () => '',
  readFile: (path) => readFile(path, 'utf8'),
  fetch: async () => {
    throw new Error('the hub must not be contacted');
  },
};

describe('spec documents: anchors and merge keys', () => {
  it('a container built from <<: *base with its own name and env, in a spec file apply -f takes', async () => {
    const file = join(scratchDir('spec-documents-'), 'web.yaml');
    writeFileSync(
      file,
      `name: web
scheduling: { selectors: { site: lab } }
spec:
  containers:
    - &base
      name: web
      image: registry.local/web:1
      env: [{ name: LEVEL, value: info }]
      restartPolicy: { name: always }
    - <<: *base
      name: sidecar
      env: [{ name: LEVEL, value: debug }]
`,
    );
    const set = await loadSpecSet(io, [file]);
    expect(set.specs[0]!.spec.containers).toEqual([
      { name: 'web', image: 'registry.local/web:1', env: [{ name: 'LEVEL', value: 'info' }], restartPolicy: { name: 'always' } },
      { name: 'sidecar', image: 'registry.local/web:1', env: [{ name: 'LEVEL', value: 'debug' }], restartPolicy: { name: 'always' } },
    ]);
  });

  it('several merged mappings (<<: [*a, *b]): the first one named wins, as YAML 1.1 says', async () => {
    await loadYaml();
    const [document] = parseDocuments('x.yaml', 'a: &a { k: 1, only-a: 1 }\nb: &b { k: 2, only-b: 2 }\nc: { <<: [*a, *b] }\n');
    expect((document!.value as Record<string, unknown>).c).toEqual({ k: 1, 'only-a': 1, 'only-b': 2 });
  });
});
