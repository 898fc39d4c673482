/**
 * Which apps run on which device, and what each device's desired document
 * holds. Pure functions: the dispatcher feeds them rows, they return data.
 */
import { type AppSpec, contentHash, type DesiredApp, type Labels, type Scheduling } from '../../shared/index.js';

/** An explicit device list wins; otherwise every selector must equal the device's label (`{}` selects all). */
export function matches(scheduling: Scheduling, deviceId: string, labels: Labels): boolean {
  if (scheduling.devices && !scheduling.devices.includes(deviceId)) return false;
  if (scheduling.selectors) return Object.entries(scheduling.selectors).every(([key, value]) => labels[key] === value);
  return scheduling.devices !== undefined;
}

export interface SchedulableApp {
  name: string;
  revision: number;
  spec: AppSpec;
  forced?: boolean;
}

export class MissingSecretError extends Error {
  constructor(
    readonly secret: string,
    readonly path: string,
  ) {
    super(`secret "${secret}" does not exist`);
  }
}

/**
 * The apps one device must run, secrets resolved, sorted by name so the
 * document is stable. `version` picks the revision of each matched app this
 * device runs (an older one while a rollout has not reached it); by default
 * the app's current revision.
 */
export function desiredAppsFor(
  deviceId: string,
  labels: Labels,
  apps: readonly SchedulableApp[],
  secret: (name: string) => string | undefined,
  version: (app: SchedulableApp) => SchedulableApp = (app) => app,
): DesiredApp[] {
  return apps
    .filter((app) => matches(app.spec.scheduling, deviceId, labels))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(version)
    .map((app) => ({
      name: app.name,
      revision: app.revision,
      containers: resolveSecrets(app.spec, secret),
      ...(app.spec.spec.update ? { update: app.spec.spec.update } : {}),
      ...(app.forced ? { forceUpdate: true } : {}),
    }));
}

/** Replaces every `fromSecret` with the secret's value; throws MissingSecretError naming the field. */
export function resolveSecrets(spec: AppSpec, secret: (name: string) => string | undefined): DesiredApp['containers'] {
  const lookup = (name: string, path: string): string => {
    const value = secret(name);
    if (value === undefined) throw new MissingSecretError(name, path);
    return value;
  };
  return spec.spec.containers.map((container, i) => {
    const resolved = { ...container };
    if (container.env) {
      resolved.env = container.env.map((env, j) =>
        env.fromSecret === undefined
          ? env
          : { name: env.name, value: lookup(env.fromSecret, `spec.containers[${i}].env[${j}].fromSecret`) },
      );
    }
    if (container.auth?.fromSecret !== undefined) {
      resolved.auth = {
        username: container.auth.username,
        password: lookup(container.auth.fromSecret, `spec.containers[${i}].auth.fromSecret`),
      };
    }
    return resolved;
  });
}

/** Hash of what a device must run; the revision grows only when this changes. */
export function desiredHash(apps: readonly DesiredApp[]): string {
  return contentHash(apps);
}
