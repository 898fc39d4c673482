/** Secret references in a spec: validation of secret files, and their resolution into a device's desired document. */
import { describe, expect, it } from 'vitest';
import { referencedSecrets, resolveSecrets, SecretRefError, secretProblems } from '../../broker/dispatcher/scheduling.js';
import { type AppSpec, validateAppSpec } from '../../shared/index.js';

function spec(container: Record<string, unknown>): unknown {
  return {
    name: 'web',
    scheduling: { selectors: {} },
    spec: { containers: [{ name: 'web', image: 'registry.local/web:1', ...container }] },
  };
}

function valid(container: Record<string, unknown>): AppSpec {
  const result = validateAppSpec(spec(container));
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.value;
}

function issues(container: Record<string, unknown>): string[] {
  const result = validateAppSpec(spec(container));
  return result.ok ? [] : result.issues.map((i) => `${i.path}: ${i.message}`);
}

describe('secret files in a spec', () => {
  it('accepts names with and without a path', () => {
    expect(issues({ secrets: [{ name: 'tls-key' }, { name: 'db-password', path: '/etc/app/db.pass' }] })).toEqual([]);
  });

  it('refuses a value in the spec, relative or dotted paths, and one path written twice', () => {
    expect(issues({ secrets: [{ name: 'k', data: 'aGk=' }] })).toEqual([
      'spec.containers[0].secrets[0].data: is filled in by the hub from the named secret: store the value with `flotilla secret set`',
    ]);
    expect(issues({ secrets: [{ name: 'k', path: 'run/k' }] })[0]).toMatch(
      /^spec\.containers\[0\]\.secrets\[0\]\.path: must match pattern/,
    );
    expect(issues({ secrets: [{ name: 'k', path: '/run/../etc/passwd' }] })).toEqual([
      'spec.containers[0].secrets[0].path: must not contain "." or ".." segments',
    ]);
    expect(issues({ secrets: [{ name: 'a', path: '/run/secrets/b' }, { name: 'b' }] })).toEqual([
      'spec.containers[0].secrets[1]: file /run/secrets/b is also written by spec.containers[0].secrets[0]',
    ]);
  });
});

describe('resolveSecrets', () => {
  const binary = Buffer.from([0x00, 0xff, 0x10, 0x80]);
  const values: Record<string, Buffer> = { text: Buffer.from('s3cr3t\n'), binary };
  const lookup = (name: string) => values[name];

  it('puts any bytes into a file as base64, and text into env and registry auth', () => {
    const app = valid({
      env: [{ name: 'TOKEN', fromSecret: 'text' }],
      auth: { username: 'ci', fromSecret: 'text' },
      secrets: [{ name: 'binary' }, { name: 'text', path: '/etc/t' }],
    });
    const [container] = resolveSecrets(app, lookup);
    expect(container?.env).toEqual([{ name: 'TOKEN', value: 's3cr3t\n' }]);
    expect(container?.auth).toEqual({ username: 'ci', password: 's3cr3t\n' });
    expect(container?.secrets).toEqual([
      { name: 'binary', data: binary.toString('base64') },
      { name: 'text', path: '/etc/t', data: Buffer.from('s3cr3t\n').toString('base64') },
    ]);
    expect([...referencedSecrets(app)].sort()).toEqual(['binary', 'text']);
  });

  it('refuses bytes that are not UTF-8 text where an env value needs text, naming the field', () => {
    const app = valid({ env: [{ name: 'TOKEN', fromSecret: 'binary' }] });
    expect(() => resolveSecrets(app, lookup)).toThrow(SecretRefError);
    try {
      resolveSecrets(app, lookup);
    } catch (err) {
      expect((err as SecretRefError).path).toBe('spec.containers[0].env[0].fromSecret');
      expect((err as SecretRefError).message).toContain('is not UTF-8 text');
    }
  });

  it('lists every unusable secret at once, each at the first field naming it, init containers included', () => {
    const app = valid({
      env: [
        { name: 'A', fromSecret: 'gone' },
        { name: 'B', fromSecret: 'binary' },
        { name: 'C', fromSecret: 'text' },
      ],
      auth: { username: 'ci', fromSecret: 'gone' },
      secrets: [{ name: 'binary' }, { name: 'also-gone' }],
    });
    const withInit = {
      ...app,
      spec: {
        ...app.spec,
        initContainers: [{ name: 'migrate', image: 'registry.local/m:1', env: [{ name: 'D', fromSecret: 'init-gone' }] }],
      },
    };
    expect(secretProblems(withInit, lookup).map((p) => `${p.path}: ${p.message}`)).toEqual([
      'spec.containers[0].env[0].fromSecret: secret "gone" does not exist',
      'spec.containers[0].env[1].fromSecret: secret "binary" is not UTF-8 text without NUL bytes: use it as a file (secrets: [{name: binary}])',
      'spec.containers[0].secrets[1].name: secret "also-gone" does not exist',
      'spec.initContainers[0].env[0].fromSecret: secret "init-gone" does not exist',
    ]);
    expect(secretProblems(valid({ env: [{ name: 'C', fromSecret: 'text' }], secrets: [{ name: 'binary' }] }), lookup)).toEqual([]);
  });

  it('names the field of a missing secret file', () => {
    expect(() => resolveSecrets(valid({ secrets: [{ name: 'nope' }] }), lookup)).toThrow(
      expect.objectContaining({ path: 'spec.containers[0].secrets[0].name', message: 'secret "nope" does not exist' }),
    );
  });
});
