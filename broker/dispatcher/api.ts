/**
 * The hub's API methods, one table shared by HTTP and MQTT request/response so
 * both transports behave identically; what each takes and returns is declared
 * in shared/api/methods.ts. Each method: validate params → act on the store →
 * tell the dispatcher that desired state may have changed.
 */
import {
  API,
  type ApiMethodName,
  type ApiResult,
  type AppSpec,
  type IdClash,
  isApiMethod,
  MAX_SECRET_BYTES,
  validate,
  validateAppSpec,
} from '../../shared/index.js';
import type { AuthMethodName } from '../auth/methods.js';
import type { AppStore } from '../store/apps.js';
import type { DeviceStore } from '../store/devices.js';
import type { SecretStore } from '../store/secrets.js';
import type { TelemetryMethodName } from '../telemetry/methods.js';
import { ApiError } from './errors.js';
import type { ApiHandlers, ApiHandlersFor } from './method.js';
import type { Rollouts } from './rollouts.js';
import { referencedSecrets, resolveSecrets, SecretRefError } from './scheduling.js';
import { appDetail, appHistory, appSummary, type DeviceNotes, deviceView } from './views.js';

/** The methods implemented here; telemetry and auth bring their own. */
type CoreMethodName = Exclude<ApiMethodName, TelemetryMethodName | AuthMethodName>;

export interface ApiDeps {
  apps: AppStore;
  devices: DeviceStore;
  secrets: SecretStore;
  rollouts: Rollouts;
  /** Called after any change that can alter what some device must run. */
  desiredMayHaveChanged: () => void;
  /** logs.query, events.query, metrics.query, devices.top (broker/telemetry/methods.ts). */
  telemetry: ApiHandlersFor<TelemetryMethodName>;
  /** tokens.*, serviceaccounts.*, devices.revoke (broker/auth/methods.ts). */
  auth: ApiHandlersFor<AuthMethodName>;
  /** Which devices are revoked (broker/auth/device-credentials.ts); without it, none is. */
  revocations?: Revocations;
  /** Devices whose id two connections keep taking from each other (broker/mqtt/id-clash.ts); without it, none. */
  idClashes?: { get(deviceId: string): IdClash | undefined };
}

export interface Revocations {
  revokedAt(deviceId: string): string | undefined;
  /** Every revoked device → when: one query for a whole device list. */
  revoked(): ReadonlyMap<string, string>;
}

export function createApi(deps: ApiDeps) {
  const { apps, devices, secrets, rollouts } = deps;
  const revokedAt = (id: string) => deps.revocations?.revokedAt(id);
  const notes = (id: string, revoked: string | undefined): DeviceNotes => ({ revokedAt: revoked, idClash: deps.idClashes?.get(id) });

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

  const core: ApiHandlersFor<CoreMethodName> = {
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

    'devices.list': () => {
      const revoked = deps.revocations?.revoked() ?? new Map<string, string>();
      return { items: devices.list().map((device) => deviceView(device, notes(device.id, revoked.get(device.id)))) };
    },

    'devices.get': ({ id }) => {
      const device = devices.get(id);
      if (!device) throw ApiError.notFound('device', id);
      return deviceView(device, notes(id, revokedAt(id)));
    },

    'devices.label': ({ id, set, remove }) => {
      const device = devices.get(id);
      if (!device) throw ApiError.notFound('device', id);
      const labels = { ...device.operatorLabels, ...set };
      // Removing a label the agent reports needs a tombstone, or it would come straight back.
      for (const key of remove ?? []) {
        if (key in device.reportedLabels) labels[key] = null;
        else delete labels[key];
      }
      devices.setOperatorLabels(id, labels);
      deps.desiredMayHaveChanged();
      return deviceView(devices.get(id)!, notes(id, revokedAt(id)));
    },

    'secrets.list': () => ({ items: secrets.list() }),

    /**
     * `value` is text; `valueBase64` carries any bytes (a key file that is not
     * UTF-8). Either way at most 64 KiB, and the answer never echoes it.
     */
    'secrets.set': ({ name, value, valueBase64 }) => {
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
      for (const app of apps.list()) {
        if (!referencedSecrets(app.spec).has(name)) continue;
        try {
          resolveSecrets(app.spec, (n) => (n === name ? bytes : secrets.get(n)));
        } catch (err) {
          if (!(err instanceof SecretRefError)) throw err;
          if (err.secret === name) {
            throw ApiError.invalid('invalid_request', `secret "${name}" for app "${app.name}"`, [{ path: err.path, message: err.message }]);
          }
        }
      }
      secrets.set(name, bytes);
      deps.desiredMayHaveChanged();
      return { name };
    },

    'secrets.delete': ({ name }) => {
      const inUse = apps.list().find((app) => referencedSecrets(app.spec).has(name));
      if (inUse) throw new ApiError('invalid_request', `secret "${name}" is used by app "${inUse.name}"`);
      if (!secrets.delete(name)) throw ApiError.notFound('secret', name);
      return { name, deleted: true };
    },
  };
  const handlers: ApiHandlers = { ...core, ...deps.telemetry, ...deps.auth };

  /** Params checked against the method's declared schema before its handler sees them. */
  function run<M extends ApiMethodName>(name: M, params: unknown): ApiResult<M> {
    const checked = validate(API[name].params, params ?? {});
    if (!checked.ok) throw ApiError.invalid('invalid_request', `params for ${name}`, checked.issues);
    const handler: ApiHandlers[M] = handlers[name];
    return handler(checked.value);
  }

  /** Runs a method by name with untrusted params; throws ApiError on any caller mistake (an unknown method too). */
  function call<M extends ApiMethodName>(name: M, params: unknown): ApiResult<M>;
  function call(name: string, params: unknown): unknown;
  function call(name: string, params: unknown): unknown {
    if (!isApiMethod(name)) throw new ApiError('unknown_method', `unknown method "${name}"`);
    return run(name, params);
  }

  return {
    /** The methods this table implements: every declared one (test/unit/api-declaration.test.ts). */
    methods: Object.keys(handlers),
    call,
  };
}

export type HubApi = ReturnType<typeof createApi>;
