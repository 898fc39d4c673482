/** Secrets of init containers: resolved for the device, and an error names `spec.initContainers[i]`, not a container's path. */
import { describe, expect, it } from 'vitest';
import { referencedSecrets, resolveInitSecrets, resolveSecrets, SecretRefError } from '../../broker/dispatcher/scheduling.js';
import { type AppSpec, validateAppSpec } from '../../shared/index.js';

function shop(migrate: Record<string, unknown>): AppSpec {
  const result = validateAppSpec({
    name: 'shop',
    scheduling: { selectors: {} },
    spec: {
      initContainers: [
        { name: 'seed', image: 'registry.local/seed:1' },
        { name: 'migrate', image: 'registry.local/migrate:1', ...migrate },
      ],
      containers: [{ name: 'web', image: 'registry.local/web:1', env: [{ name: 'TOKEN', fromSecret: 'token' }] }],
    },
  });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.value;
}

const values: Record<string, Buffer> = { token: Buffer.from('t0ken'), dsn: Buffer.from('postgres://db/shop') };
const lookup = (name: string) => values[name];

function refusal(spec: AppSpec): SecretRefError {
  try {
    resolveSecrets(spec, lookup);
  } catch (err) {
    if (err instanceof SecretRefError) return err;
    throw err;
  }
  throw new Error('resolveSecrets accepted the spec');
}

describe('init container secrets', () => {
  it('are resolved into the init containers the device gets', () => {
    const spec = shop({ env: [{ name: 'DSN', fromSecret: 'dsn' }], secrets: [{ name: 'token' }] });
    const [, migrate] = resolveInitSecrets(spec, lookup);
    expect(migrate?.env).toEqual([{ name: 'DSN', value: 'postgres://db/shop' }]);
    expect(migrate?.secrets).toEqual([{ name: 'token', data: Buffer.from('t0ken').toString('base64') }]);
  });

  it('name the init container by its place in spec.initContainers when one is missing', () => {
    const env = refusal(shop({ env: [{ name: 'DSN', fromSecret: 'nope' }] }));
    expect(env.path).toBe('spec.initContainers[1].env[0].fromSecret');
    expect(env.message).toBe('secret "nope" does not exist');
    expect(refusal(shop({ secrets: [{ name: 'gone' }] })).path).toBe('spec.initContainers[1].secrets[0].name');
    expect(refusal(shop({ auth: { username: 'ci', fromSecret: 'nope' } })).path).toBe('spec.initContainers[1].auth.fromSecret');
  });

  it('count as referenced, so a secret only an init container uses cannot be deleted', () => {
    expect(referencedSecrets(shop({ env: [{ name: 'DSN', fromSecret: 'dsn' }] }))).toEqual(new Set(['token', 'dsn']));
  });
});
