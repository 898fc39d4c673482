/** secrets.*: values sealed at rest, checked against every app that uses them before they are stored. */
import { MAX_SECRET_BYTES } from '../../shared/index.js';
import type { AppStore } from '../store/apps.js';
import type { SecretStore } from '../store/secrets.js';
import { ApiError } from './errors.js';
import type { ApiHandlersFor } from './method.js';
import { referencedSecrets, resolveSecrets, SecretRefError } from './scheduling.js';
import { secretValues } from './secret-values.js';

export type SecretMethodName = 'secrets.list' | 'secrets.set' | 'secrets.delete';

export interface SecretMethodDeps {
  apps: Pick<AppStore, 'list'>;
  secrets: SecretStore;
  /** Called after any change that can alter what some device must run. */
  desiredMayHaveChanged: () => void;
}

export function secretMethods(deps: SecretMethodDeps): ApiHandlersFor<SecretMethodName> {
  const { apps, secrets } = deps;

  return {
    'secrets.list': async () => ({ items: await secrets.list() }),

    /**
     * `value` is text; `valueBase64` carries any bytes (a key file that is not
     * UTF-8). Either way at most 64 KiB, and the answer never echoes it.
     */
    'secrets.set': async ({ name, value, valueBase64 }) => {
      if ((value === undefined) === (valueBase64 === undefined)) {
        throw ApiError.invalid('invalid_request', 'params for secrets.set', [
          { path: '', message: 'must have exactly one of "value" or "valueBase64"' },
        ]);
      }
      const bytes = value !== undefined ? Buffer.from(value, 'utf8') : Buffer.from(valueBase64 ?? '', 'base64');
      if (bytes.length > MAX_SECRET_BYTES) {
        throw ApiError.invalid('invalid_request', 'params for secrets.set', [
          { path: 'value', message: `must be at most ${MAX_SECRET_BYTES} bytes` },
        ]);
      }
      // Checked before storing: a value an app cannot use (binary where env needs text) is refused, not half-deployed.
      for (const app of await apps.list()) {
        if (!referencedSecrets(app.spec).has(name)) continue;
        const others = await secretValues(secrets, [app.spec]);
        try {
          resolveSecrets(app.spec, (n) => (n === name ? bytes : others(n)));
        } catch (err) {
          if (!(err instanceof SecretRefError)) throw err;
          if (err.secret === name) {
            throw ApiError.invalid('invalid_request', `secret "${name}" for app "${app.name}"`, [{ path: err.path, message: err.message }]);
          }
        }
      }
      await secrets.set(name, bytes);
      deps.desiredMayHaveChanged();
      return { name };
    },

    'secrets.delete': async ({ name }) => {
      const inUse = (await apps.list()).find((app) => referencedSecrets(app.spec).has(name));
      if (inUse) throw new ApiError('invalid_request', `secret "${name}" is used by app "${inUse.name}"`);
      if (!(await secrets.delete(name))) throw ApiError.notFound('secret', name);
      return { name, deleted: true };
    },
  };
}
