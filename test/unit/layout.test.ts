/**
 * The top level is the architecture: `agent/` (the device) and `broker/` (the
 * hub) each import only `shared/`; `cli/`, which starts both, is the only
 * code that imports both sides; nothing product-side imports tests or
 * benchmarks, and tests never import `bench/`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

/** Which top-level folders each folder may import (besides itself and packages). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  shared: [],
  agent: ['shared'],
  broker: ['shared'],
  cli: ['shared', 'agent', 'broker'],
  test: ['shared', 'agent', 'broker', 'cli'],
  bench: ['shared', 'agent', 'broker', 'cli', 'test'],
};

/** Relative specifiers of static imports, re-exports and dynamic `import()` in one source text. */
function relativeImports(source: string): string[] {
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

interface Crossing {
  file: string;
  imports: string;
}

/** Imports in `files` (path → text, paths relative to the repo root) that leave what MAY_IMPORT allows. */
function forbiddenImports(files: Map<string, string>): Crossing[] {
  const crossings: Crossing[] = [];
  for (const [file, text] of files) {
    const from = file.split('/')[0]!;
    const allowed = MAY_IMPORT[from];
    if (!allowed) continue;
    for (const specifier of relativeImports(text)) {
      const target = normalize(join(dirname(file), specifier));
      const to = target.split('/')[0]!;
      if (to !== from && to in MAY_IMPORT && !allowed.includes(to)) crossings.push({ file, imports: target });
    }
  }
  return crossings;
}

function sourcesUnder(folder: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|tsx|js|mjs)$/.test(entry.name)) files.set(relative(ROOT, path), readFileSync(path, 'utf8'));
    }
  };
  walk(join(ROOT, folder));
  return files;
}

describe('layout', () => {
  it('finds static, type-only, re-exported and dynamic imports', () => {
    const text = [
      "import { a } from '../broker/a.js';",
      "import type { B } from '../../broker/b.js';",
      "export { c } from './c.js';",
      "const { d } = await import('../../agent/d.js');",
      "import './side-effect.js';",
      "import { e } from 'node:fs';",
    ].join('\n');
    expect(relativeImports(text)).toEqual(['../broker/a.js', '../../broker/b.js', './c.js', '../../agent/d.js', './side-effect.js']);
  });

  it('names a file of one side that imports the other', () => {
    const files = new Map([
      ['agent/agent.ts', "import { createLogger } from '../broker/logger.js';"],
      ['broker/cli/commands/agent.ts', "const { startAgent } = await import('../../../agent/agent.js');"],
      ['cli/commands/agent.ts', "const { startAgent } = await import('../../agent/agent.js');"],
      ['shared/topics.ts', "import { x } from '../agent/x.js';"],
      ['test/unit/x.test.ts', "import { run } from '../../bench/fleet-apply.js';"],
    ]);
    expect(forbiddenImports(files)).toEqual([
      { file: 'agent/agent.ts', imports: 'broker/logger.js' },
      { file: 'broker/cli/commands/agent.ts', imports: 'agent/agent.js' },
      { file: 'shared/topics.ts', imports: 'agent/x.js' },
      { file: 'test/unit/x.test.ts', imports: 'bench/fleet-apply.js' },
    ]);
  });

  it('holds for the tree: agent/ and broker/ import only shared/, tests never import bench/', () => {
    const files = new Map(Object.keys(MAY_IMPORT).flatMap((folder) => [...sourcesUnder(folder)]));
    files.delete(relative(ROOT, import.meta.filename)); // its examples above are crossings on purpose
    expect(files.size).toBeGreaterThan(200);
    expect(forbiddenImports(files)).toEqual([]);
  });
});
