/** apps.* and rollouts.*: what runs, at which revision, and how it reaches the fleet. */
import type { AppSpec } from '../../shared/index.js';
import { validateAppSpec } from '../../shared/index.js';
import type { AppStore } from '../store/apps.js';
import type { DeviceStore } from '../store/devices.js';
import type { SecretStore } from '../store/secrets.js';
import { ApiError } from './errors.js';
import type { ApiHandlersFor } from './method.js';
import type { Rollouts } from './rollouts.js';
import { resolveSecrets, SecretRefError } from './scheduling.js';
import { appDetail, appHistory, appRevision, appSummary } from './views.js';

export type AppMethodName =
  | 'apps.apply'
  | 'apps.force'
  | 'apps.retry'
  | 'apps.history'
  | 'apps.revision'
  | 'apps.rollback'
  | 'apps.list'
  | 'apps.get'
  | 'apps.delete'
  | 'rollouts.status'
  | 'rollouts.pause'
  | 'rollouts.resume'
  | 'rollouts.abort';

export interface AppMethodDeps {
  apps: AppStore;
  devices: Pick<DeviceStore, 'list'>;
  secrets: Pick<SecretStore, 'get'>;
  rollouts: Rollouts;
  /** Called after any change that can alter what some device must run. */
  desiredMayHaveChanged: () => void;
}

export function appMethods(deps: AppMethodDeps): ApiHandlersFor<AppMethodName> {
  const { apps, devices, secrets, rollouts } = deps;

  /** A spec fit to become current: valid by today's schema, its secrets all present. */
  function checkSpec(spec: unknown, what: string): AppSpec {
    const result = validateAppSpec(spec);
    if (!result.ok) throw ApiError.invalid('invalid_spec', what, result.issues);
    try {
      resolveSecrets(result.value, (name) => secrets.get(name));
    } catch (err) {
      if (err instanceof SecretRefError) {
        throw ApiError.invalid('invalid_spec', what, [{ path: err.path, message: err.message }]);
      }
      throw err;
    }
    return result.value;
  }

  return {
    'apps.apply': ({ spec }) => {
      const checked = checkSpec(spec, 'app spec');
      const { revision, changed } = apps.apply(checked);
      if (changed) {
        rollouts.onNewRevision(checked.name);
        deps.desiredMayHaveChanged();
      }
      return { name: checked.name, revision, changed };
    },

    /** Swap the current revision in even where the app holds its update lock. */
    'apps.force': ({ name }) => {
      const revision = apps.force(name);
      if (revision === undefined) throw ApiError.notFound('app', name);
      deps.desiredMayHaveChanged();
      return { name, revision, forced: true };
    },

    /**
     * Devices never retry a revision that failed its health gate; a retry is
     * the same spec as a new revision (kubectl's `rollout restart` habit).
     */
    'apps.retry': ({ name }) => {
      const app = apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      const { revision } = apps.apply(app.spec, `retry of ${app.revision}`, { evenIfUnchanged: true });
      deps.desiredMayHaveChanged();
      return { name, revision, retryOf: app.revision };
    },

    'apps.history': ({ name }) => {
      const app = apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      return appHistory(name, app.revision, apps.revisions(name));
    },

    'apps.revision': ({ name, revision }) => {
      const app = apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      const stored = apps.revision(name, revision);
      if (!stored) throw new ApiError('not_found', `app "${name}" has no revision ${revision}`);
      return appRevision(name, app.revision, stored);
    },

    /**
     * kubectl's `rollout undo`: the target's spec becomes a new revision, so
     * history only grows and devices, which never accept an older desired
     * document, simply converge to the next one.
     */
    'apps.rollback': ({ name, toRevision }) => {
      const app = apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      const target = toRevision ?? apps.previousRevision(name, app.revision);
      if (target === undefined) throw new ApiError('invalid_request', `app "${name}" has no revision before ${app.revision}`);
      const stored = apps.revision(name, target);
      if (!stored) throw new ApiError('not_found', `app "${name}" has no revision ${target}`);
      const spec = checkSpec(stored.spec, `app spec of revision ${target}`);
      const { revision, changed } = apps.apply(spec, `rollback to ${target}`);
      if (changed) {
        rollouts.onNewRevision(name);
        deps.desiredMayHaveChanged();
      }
      return { name, revision, changed, rolledBackTo: target };
    },

    /** The app's newest rollout: phase, and every device's place in it. */
    'rollouts.status': ({ name }) => rollouts.status(name),

    'rollouts.pause': ({ name }) => {
      const status = rollouts.pause(name);
      deps.desiredMayHaveChanged();
      return status;
    },

    'rollouts.resume': ({ name }) => {
      const status = rollouts.resume(name);
      deps.desiredMayHaveChanged();
      return status;
    },

    /** Every device back on the revision it ran before; the app's current revision stays the new one. */
    'rollouts.abort': ({ name }) => {
      const status = rollouts.abort(name);
      deps.desiredMayHaveChanged();
      return status;
    },

    'apps.list': () => {
      const all = devices.list();
      return { items: apps.list().map((app) => appSummary(app, all)) };
    },

    'apps.get': ({ name }) => {
      const app = apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      return appDetail(app, devices.list());
    },

    'apps.delete': ({ name }) => {
      if (!apps.delete(name)) throw ApiError.notFound('app', name);
      rollouts.forget(name);
      deps.desiredMayHaveChanged();
      return { name, deleted: true };
    },
  };
}
