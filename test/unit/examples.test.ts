import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { formatIssues, validateAppSpec } from '../../shared/index.js';

const dir = join(import.meta.dirname, '../../examples');
const specs = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

describe('examples/', () => {
  it('has app specs', () => {
    expect(specs).toContain('hello.yaml');
  });

  it.each(specs)('%s is a valid app spec', (file) => {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const result = validateAppSpec(doc.toJS());
      expect(result.ok ? 'valid' : formatIssues(result.issues)).toBe('valid');
    }
  });
});
