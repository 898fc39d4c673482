/** apps.* and rollouts.*: what runs, at which revision, and how it reaches the fleet. */
import type { AppSpec } from '../../shared/index.js';
import { validateAppSpec } from '../../shared/index.js';
import type { AppStore } from '../store/apps.js';
import type { DeviceStore } from '../store/devices.js';
import type { SecretStore } from '../store/secrets.js';
import { applySet, exportApps } from './apply-set.js';
import { ApiError } from './errors.js';
import type { ApiHandlersFor } from './method.js';
import type { Rollouts } from './rollouts.js';
import { secretProblems } from './scheduling.js';
import { secretValues } from './secret-values.js';
import { appDetail, appHistory, appRevision, appSummary, appViewDevice } from './views.js';

export type AppMethodName =
  | 'apps.apply'
  | 'apps.applyAll'
  | 'apps.plan'
  | 'apps.export'
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
  devices: Pick<DeviceStore, 'fleetRows'>;
  secrets: Pick<SecretStore, 'get'>;
  rollouts: Rollouts;
  /** Called after any change that can alter what some device must run. */
  desiredMayHaveChanged: () => void;
}

export function appMethods(deps: AppMethodDeps): ApiHandlersFor<AppMethodName> {
  const { apps, devices, secrets, rollouts } = deps;

  /** A spec fit to become current: valid by today's schema, its secrets all present. */
  async function checkSpec(spec: unknown, what: string): Promise<AppSpec> {
    const result = validateAppSpec(spec);
    if (!result.ok) throw ApiError.invalid('invalid_spec', what, result.issues);
    const problems = secretProblems(result.value, await secretValues(secrets, [result.value]));
    if (problems.length > 0)
      throw ApiError.invalid(
        'invalid_spec',
        what,
        problems.map(({ path, message }) => ({ path, message })),
      );
    return result.value;
  }

  return {
    'apps.apply': async ({ spec }) => {
      const checked = await checkSpec(spec, 'app spec');
      const { revision, changed } = await apps.apply(checked);
      if (changed) {
        await rollouts.onNewRevision(checked.name);
        deps.desiredMayHaveChanged();
      }
      return { name: checked.name, revision, changed };
    },

    /** A set of specs as one unit (apply-set.ts). */
    'apps.applyAll': (params) => applySet(deps, params),

    'apps.plan': (params) => applySet(deps, { ...params, dryRun: true }),

    'apps.export': (params) => exportApps(apps, params),

    /** Swap the current revision in even where the app holds its update lock. */
    'apps.force': async ({ name }) => {
      const revision = await apps.force(name);
      if (revision === undefined) throw ApiError.notFound('app', name);
      deps.desiredMayHaveChanged();
      return { name, revision, forced: true };
    },

    /**
     * Devices never retry a revision that failed its health gate; a retry is
     * the same spec as a new revision (kubectl's `rollout restart` habit).
     */
    'apps.retry': async ({ name }) => {
      const app = await apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      const { revision } = await apps.apply(app.spec, `retry of ${app.revision}`, { evenIfUnchanged: true });
      deps.desiredMayHaveChanged();
      return { name, revision, retryOf: app.revision };
    },

    'apps.history': async ({ name }) => {
      const app = await apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      return appHistory(name, app.revision, await apps.revisions(name));
    },

    'apps.revision': async ({ name, revision }) => {
      const app = await apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      const stored = await apps.revision(name, revision);
      if (!stored) throw new ApiError('not_found', `app "${name}" has no revision ${revision}`);
      return appRevision(name, app.revision, stored);
    },

    /**
     * kubectl's `rollout undo`: the target's spec becomes a new revision, so
     * history only grows and devices, which never accept an older desired
     * document, simply converge to the next one.
     */
    'apps.rollback': async ({ name, toRevision }) => {
      const app = await apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      const target = toRevision ?? (await apps.previousRevision(name, app.revision));
      if (target === undefined) throw new ApiError('invalid_request', `app "${name}" has no revision before ${app.revision}`);
      const stored = await apps.revision(name, target);
      if (!stored) throw new ApiError('not_found', `app "${name}" has no revision ${target}`);
      const spec = await checkSpec(stored.spec, `app spec of revision ${target}`);
      const { revision, changed } = await apps.apply(spec, `rollback to ${target}`);
      if (changed) {
        await rollouts.onNewRevision(name);
        deps.desiredMayHaveChanged();
      }
      return { name, revision, changed, rolledBackTo: target };
    },

    /** The app's newest rollout: phase, and every device's place in it. */
    'rollouts.status': ({ name }) => rollouts.status(name),

    'rollouts.pause': async ({ name }) => {
      const status = await rollouts.pause(name);
      deps.desiredMayHaveChanged();
      return status;
    },

    'rollouts.resume': async ({ name }) => {
      const status = await rollouts.resume(name);
      deps.desiredMayHaveChanged();
      return status;
    },

    /** Every device back on the revision it ran before; the app's current revision stays the new one. */
    'rollouts.abort': async ({ name }) => {
      const status = await rollouts.abort(name);
      deps.desiredMayHaveChanged();
      return status;
    },

    'apps.list': async () => {
      const all = (await devices.fleetRows()).map(appViewDevice);
      return { items: (await apps.list()).map((app) => appSummary(app, all)) };
    },

    'apps.get': async ({ name }) => {
      const app = await apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      // The fleet's rows without their desired documents: a dashboard or a script polling an app reads 10,000 devices each time.
      return appDetail(app, (await devices.fleetRows()).map(appViewDevice));
    },

    'apps.delete': async ({ name }) => {
      if (!(await apps.delete(name))) throw ApiError.notFound('app', name);
      await rollouts.forget(name);
      deps.desiredMayHaveChanged();
      return { name, deleted: true };
    },
  };
}
