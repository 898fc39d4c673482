import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { formatIssues, validateAppSpec, validateJobSpec } from '../../shared/index.js';

const dir = join(import.meta.dirname, '../../examples');
const yamlFiles = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
/** A job's example says so in its name (`flotilla run -f`); the others are apps (`flotilla apply -f`). */
const jobs = yamlFiles.filter((f) => f.endsWith('-job.yaml'));
const apps = yamlFiles.filter((f) => !jobs.includes(f));

/** The folder a team keeps in git (docs/gitops.md): specs under apps/, any depth, as `flotilla apply -f DIR` reads them. */
const gitops = join(dir, 'gitops');
const gitopsSpecs = (readdirSync(join(gitops, 'apps'), { recursive: true }) as string[])
  .filter((f) => /\.(ya?ml|json)$/.test(f))
  .map((f) => relative(dir, join(gitops, 'apps', f)))
  .sort();

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

  describe('gitops/', () => {
    const documents = gitopsSpecs.flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => ({ file, value: doc.toJS() as { name?: string } })),
    );

    it('holds several apps, in a subfolder too, one file with two of them', () => {
      expect(gitopsSpecs).toEqual(['gitops/apps/monitoring/telemetry.yaml', 'gitops/apps/web.yaml']);
      expect(documents.filter((doc) => doc.file === 'gitops/apps/monitoring/telemetry.yaml')).toHaveLength(2);
    });

    it.each(gitopsSpecs)('%s is valid app specs', (file) => {
      for (const verdict of verdicts(file, validateAppSpec)) expect(verdict).toBe('valid');
    });

    it('names every app once, as one apply of the folder requires', () => {
      const names = documents.map((doc) => doc.value.name);
      expect(names).toEqual(['loadavg', 'disk-watch', 'web']);
      expect(new Set(names).size).toBe(names.length);
    });

    it('has a deploy.sh that is executable and parses', () => {
      const script = join(gitops, 'deploy.sh');
      accessSync(script, constants.X_OK);
      expect(() => execFileSync('bash', ['-n', script], { stdio: 'pipe' })).not.toThrow();
    });
  });
});

describe('compose/', () => {
  it('docker-compose.yml converts to a valid app spec: start order, the migration to complete, the volume and env_file', async () => {
    const { convertCompose } = await import('../../cli/compose/load-compose.js');
    const { processIO } = await import('../../cli/io.js');
    const file = join(dir, 'compose', 'docker-compose.yml');
    const document = parseAllDocuments(readFileSync(file, 'utf8'))[0]!.toJS() as Record<string, unknown>;
    const result = await convertCompose(processIO(), file, document, { scheduling: { selectors: { site: 'lab' } } }, {});
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(validateAppSpec(result.spec).ok).toBe(true);
    const byName = Object.fromEntries(result.spec.spec.containers.map((c) => [c.name, c]));
    expect(result.spec.name).toBe('shop');
    expect(Object.keys(byName)).toEqual(['db', 'migrate', 'web']);
    expect(byName.web!.dependsOn).toEqual({ db: 'healthy', migrate: 'completed' });
    expect(byName.db!.volumes).toEqual(['db-data:/var/lib/postgresql/data']);
    expect(byName.web!.env).toContainEqual({ name: 'DATABASE_HOST', value: 'db' });
  });

  it("docker-compose.yml is a file Debian 12's docker-compose (1.29) accepts: named by x-flotilla.name, no top-level name:", () => {
    const folder = join(dir, 'compose');
    // -q: only the verdict; a file docker-compose refuses makes it exit non-zero, with the reason on stderr.
    expect(() =>
      execFileSync('/usr/bin/docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: folder, stdio: 'pipe' }),
    ).not.toThrow();
  });
});
