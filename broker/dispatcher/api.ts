/**
 * The hub's API methods, one table shared by HTTP and MQTT request/response so
 * both transports behave identically. Each method: validate params → act on
 * the store → tell the dispatcher that desired state may have changed.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import {
  type AppSpec,
  DeviceId,
  LABEL_KEY_PATTERN,
  Labels,
  Name,
  type RollbackResult,
  validate,
  validateAppSpec,
} from '../../shared/index.js';
import type { AppStore } from '../store/apps.js';
import type { DeviceStore } from '../store/devices.js';
import type { SecretStore } from '../store/secrets.js';
import { ApiError } from './errors.js';
import { type Method, method } from './method.js';
import type { Rollouts } from './rollouts.js';
import { referencedSecrets, resolveSecrets, SecretRefError } from './scheduling.js';
import { appDetail, appHistory, appSummary, deviceView } from './views.js';

export interface ApiDeps {
  apps: AppStore;
  devices: DeviceStore;
  secrets: SecretStore;
  rollouts: Rollouts;
  /** Called after any change that can alter what some device must run. */
  desiredMayHaveChanged: () => void;
  /** logs.query, events.query, metrics.query, devices.top (broker/telemetry/methods.ts). */
  telemetry?: Record<string, Method<TSchema>>;
  /** tokens.*, serviceaccounts.*, devices.revoke (broker/auth/methods.ts). */
  auth?: Record<string, Method<TSchema>>;
  /** Which devices are revoked (broker/auth/device-credentials.ts); without it, none is. */
  revocations?: Revocations;
}

export interface Revocations {
  revokedAt(deviceId: string): string | undefined;
  /** Every revoked device → when: one query for a whole device list. */
  revoked(): ReadonlyMap<string, string>;
}

/** Secret values are small (passwords, tokens, keys, certificates): they travel inside every desired document that needs them. */
const MAX_SECRET_BYTES = 65536;
const NoParams = Type.Object({}, { additionalProperties: false });
const ByName = Type.Object({ name: Name }, { additionalProperties: false });
const ById = Type.Object({ id: DeviceId }, { additionalProperties: false });

export function createApi(deps: ApiDeps) {
  const { apps, devices, secrets, rollouts } = deps;
  const revokedAt = (id: string) => deps.revocations?.revokedAt(id);

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

  const methods = {
    'apps.apply': method(Type.Object({ spec: Type.Unknown() }, { additionalProperties: false }), ({ spec }) => {
      const checked = checkSpec(spec, 'app spec');
      const { revision, changed } = apps.apply(checked);
      if (changed) {
        rollouts.onNewRevision(checked.name);
        deps.desiredMayHaveChanged();
      }
      return { name: checked.name, revision, changed };
    }),

    /** Swap the current revision in even where the app holds its update lock. */
    'apps.force': method(ByName, ({ name }) => {
      const revision = apps.force(name);
      if (revision === undefined) throw ApiError.notFound('app', name);
      deps.desiredMayHaveChanged();
      return { name, revision, forced: true };
    }),

    /**
     * Devices never retry a revision that failed its health gate; a retry is
     * the same spec as a new revision (kubectl's `rollout restart` habit).
     */
    'apps.retry': method(ByName, ({ name }) => {
      const app = apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      const { revision } = apps.apply(app.spec, `retry of ${app.revision}`, { evenIfUnchanged: true });
      deps.desiredMayHaveChanged();
      return { name, revision, retryOf: app.revision };
    }),

    'apps.history': method(ByName, ({ name }) => {
      const app = apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      return appHistory(name, app.revision, apps.revisions(name));
    }),

    /**
     * kubectl's `rollout undo`: the target's spec becomes a new revision, so
     * history only grows and devices, which never accept an older desired
     * document, simply converge to the next one.
     */
    'apps.rollback': method(
      Type.Object({ name: Name, toRevision: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false }),
      ({ name, toRevision }): RollbackResult => {
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
    ),

    /** The app's newest rollout: phase, and every device's place in it. */
    'rollouts.status': method(ByName, ({ name }) => rollouts.status(name)),

    'rollouts.pause': method(ByName, ({ name }) => {
      const status = rollouts.pause(name);
      deps.desiredMayHaveChanged();
      return status;
    }),

    'rollouts.resume': method(ByName, ({ name }) => {
      const status = rollouts.resume(name);
      deps.desiredMayHaveChanged();
      return status;
    }),

    /** Every device back on the revision it ran before; the app's current revision stays the new one. */
    'rollouts.abort': method(ByName, ({ name }) => {
      const status = rollouts.abort(name);
      deps.desiredMayHaveChanged();
      return status;
    }),

    'apps.list': method(NoParams, () => {
      const all = devices.list();
      return { items: apps.list().map((app) => appSummary(app, all)) };
    }),

    'apps.get': method(ByName, ({ name }) => {
      const app = apps.get(name);
      if (!app) throw ApiError.notFound('app', name);
      return appDetail(app, devices.list());
    }),

    'apps.delete': method(ByName, ({ name }) => {
      if (!apps.delete(name)) throw ApiError.notFound('app', name);
      rollouts.forget(name);
      deps.desiredMayHaveChanged();
      return { name, deleted: true };
    }),

    'devices.list': method(NoParams, () => {
      const revoked = deps.revocations?.revoked() ?? new Map<string, string>();
      return { items: devices.list().map((device) => deviceView(device, revoked.get(device.id))) };
    }),

    'devices.get': method(ById, ({ id }) => {
      const device = devices.get(id);
      if (!device) throw ApiError.notFound('device', id);
      return deviceView(device, revokedAt(id));
    }),

    'devices.label': method(
      Type.Object(
        {
          id: DeviceId,
          set: Type.Optional(Labels),
          remove: Type.Optional(Type.Array(Type.String({ pattern: LABEL_KEY_PATTERN }))),
        },
        { additionalProperties: false },
      ),
      ({ id, set, remove }) => {
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
        return deviceView(devices.get(id)!, revokedAt(id));
      },
    ),

    'secrets.list': method(NoParams, () => ({ items: secrets.list() })),

    /**
     * `value` is text; `valueBase64` carries any bytes (a key file that is not
     * UTF-8). Either way at most 64 KiB, and the answer never echoes it.
     */
    'secrets.set': method(
      Type.Object(
        {
          name: Name,
          value: Type.Optional(Type.String({ maxLength: MAX_SECRET_BYTES })),
          valueBase64: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength: Math.ceil(MAX_SECRET_BYTES / 3) * 4 })),
        },
        { additionalProperties: false },
      ),
      ({ name, value, valueBase64 }) => {
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
              throw ApiError.invalid('invalid_request', `secret "${name}" for app "${app.name}"`, [
                { path: err.path, message: err.message },
              ]);
            }
          }
        }
        secrets.set(name, bytes);
        deps.desiredMayHaveChanged();
        return { name };
      },
    ),

    'secrets.delete': method(ByName, ({ name }) => {
      const inUse = apps.list().find((app) => referencedSecrets(app.spec).has(name));
      if (inUse) throw new ApiError('invalid_request', `secret "${name}" is used by app "${inUse.name}"`);
      if (!secrets.delete(name)) throw ApiError.notFound('secret', name);
      return { name, deleted: true };
    }),

    ...deps.telemetry,
    ...deps.auth,
  };

  return {
    methods: Object.keys(methods),
    /** Runs a method by name with untrusted params; throws ApiError on any caller mistake. */
    call(name: string, params: unknown): unknown {
      if (!Object.hasOwn(methods, name)) throw new ApiError('unknown_method', `unknown method "${name}"`);
      const m = methods[name as keyof typeof methods] as unknown as Method<TSchema>;
      const checked = validate(m.params, params ?? {});
      if (!checked.ok) throw ApiError.invalid('invalid_request', `params for ${name}`, checked.issues);
      return m.run(checked.value);
    },
  };
}

export type HubApi = ReturnType<typeof createApi>;
