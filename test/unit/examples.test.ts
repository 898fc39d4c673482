import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { formatIssues, validateAppSpec, validateJobSpec } from '../../shared/index.js';

const dir = join(import.meta.dirname, '../../examples');
const yamlFiles = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
/** A job's example says so in its name (`flotilla run -f`); the others are apps (`flotilla apply -f`). */
const jobs = yamlFiles.filter((f) => f.endsWith('-job.yaml'));
const apps = yamlFiles.filter((f) => !jobs.includes(f));

function verdicts(file: string, check: (value: unknown) => ReturnType<typeof validateAppSpec> | ReturnType<typeof validateJobSpec>) {
  return parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => {
    const result = check(doc.toJS());
    return result.ok ? 'valid' : formatIssues(result.issues);
  });
}

describe('examples/', () => {
  it('has app specs and a job spec', () => {
    expect(apps).toContain('hello.yaml');
    expect(jobs).toContain('diagnostics-job.yaml');
  });

  it.each(apps)('%s is a valid app spec', (file) => {
    for (const verdict of verdicts(file, validateAppSpec)) expect(verdict).toBe('valid');
  });

  it.each(jobs)('%s is a valid job spec', (file) => {
    for (const verdict of verdicts(file, (value) => validateJobSpec(value))) expect(verdict).toBe('valid');
  });
});
