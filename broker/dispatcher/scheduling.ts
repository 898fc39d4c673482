/**
 * Which apps run on which device, and what each device's desired document
 * holds. Pure functions: the dispatcher feeds them rows, they return data.
 */
import {
  type AppSpec,
  type ContainerSpec,
  contentHash,
  type DesiredAgent,
  type DesiredApp,
  type DesiredJob,
  type Labels,
  type RegistryAuth,
  type Scheduling,
} from '../../shared/index.js';

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

/** A spec names a secret it cannot use: missing, or not text where text is needed. */
export class SecretRefError extends Error {
  constructor(
    readonly secret: string,
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

export class MissingSecretError extends SecretRefError {
  constructor(secret: string, path: string) {
    super(secret, path, `secret "${secret}" does not exist`);
  }
}

/** A secret value resolved by `secret(name)`: its bytes, as the store holds them. */
export type SecretLookup = (name: string) => Buffer | undefined;

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
  secret: SecretLookup,
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
      ...(app.spec.spec.initContainers ? { initContainers: resolveInitSecrets(app.spec, secret) } : {}),
      ...(app.spec.spec.initPolicy ? { initPolicy: app.spec.spec.initPolicy } : {}),
      ...(app.spec.spec.update ? { update: app.spec.spec.update } : {}),
      ...(app.forced ? { forceUpdate: true } : {}),
    }));
}

/** What secrets are resolved in: an app spec or a job spec (shared/schemas/job.ts), whose containers follow the same rules. */
export interface ContainersSpec {
  spec: { containers: readonly ContainerSpec[]; initContainers?: readonly ContainerSpec[] };
}

/**
 * The spec's containers with every `fromSecret` replaced by the secret's value and each secret
 * file's `data` filled (base64); its init containers are checked alike (resolveInitSecrets
 * gives them). Throws SecretRefError naming the field. An env value
 * or registry password must be UTF-8 text without NUL (what an environment
 * variable can hold); a file takes any bytes.
 */
export function resolveSecrets(spec: ContainersSpec, secret: SecretLookup): ContainerSpec[] {
  const containers = resolveList(spec.spec.containers, 'spec.containers', secret);
  // Checked here too, so every caller that checks a spec's secrets (apply, secret deletion) covers its init containers.
  resolveInitSecrets(spec, secret);
  return containers;
}

/** The spec's init containers with their secrets resolved, errors naming `spec.initContainers[i]`; none without any. */
export function resolveInitSecrets(spec: ContainersSpec, secret: SecretLookup): ContainerSpec[] {
  return resolveList(spec.spec.initContainers ?? [], 'spec.initContainers', secret);
}

/**
 * Every reference of the spec (containers and init containers) to a secret it cannot use, each
 * secret once, at the first field naming it: what apply reports, all at once. None when
 * resolveSecrets would succeed.
 */
export function secretProblems(spec: ContainersSpec, secret: SecretLookup): SecretRefError[] {
  const problems: SecretRefError[] = [];
  const collect: ProblemSink = (err) => {
    if (!problems.some((p) => p.secret === err.secret)) problems.push(err);
  };
  resolveList(spec.spec.containers, 'spec.containers', secret, collect);
  resolveList(spec.spec.initContainers ?? [], 'spec.initContainers', secret, collect);
  return problems;
}

/** Where a resolve that goes on past an unusable secret puts it; without one, the resolve throws it. */
type ProblemSink = (err: SecretRefError) => void;

/** `field`: where the list sits in the spec, for the path an error names. */
function resolveList(list: readonly ContainerSpec[], field: string, secret: SecretLookup, sink?: ProblemSink): ContainerSpec[] {
  return list.map((container, i) => {
    const resolved = { ...container };
    if (container.env) {
      resolved.env = container.env.map((env, j) =>
        env.fromSecret === undefined
          ? env
          : { name: env.name, value: secretText(secret, env.fromSecret, `${field}[${i}].env[${j}].fromSecret`, sink) },
      );
    }
    if (container.auth) resolved.auth = resolveAuth(container.auth, `${field}[${i}].auth`, secret, sink);
    if (container.secrets) {
      resolved.secrets = container.secrets.map((file, j) => ({
        ...file,
        data: secretBytes(secret, file.name, `${field}[${i}].secrets[${j}].name`, sink).toString('base64'),
      }));
    }
    return resolved;
  });
}

/** A container's registry credentials with the password a `fromSecret` names filled in; `path` is the auth's own (`spec.containers[0].auth`). */
export function resolveAuth(auth: RegistryAuth, path: string, secret: SecretLookup, sink?: ProblemSink): RegistryAuth {
  if (auth.fromSecret === undefined) return auth;
  return { username: auth.username, password: secretText(secret, auth.fromSecret, `${path}.fromSecret`, sink) };
}

/** Throws `err`, or hands it to the sink, when there is one, and goes on with an empty value. */
function refuse(err: SecretRefError, sink: ProblemSink | undefined): void {
  if (!sink) throw err;
  sink(err);
}

function secretBytes(secret: SecretLookup, name: string, path: string, sink?: ProblemSink): Buffer {
  const value = secret(name);
  if (value !== undefined) return value;
  refuse(new MissingSecretError(name, path), sink);
  return Buffer.alloc(0);
}

function secretText(secret: SecretLookup, name: string, path: string, sink?: ProblemSink): string {
  // A missing secret is reported by secretBytes; its stand-in, no bytes, is text.
  const value = utf8Text(secretBytes(secret, name, path, sink));
  if (value !== undefined) return value;
  refuse(
    new SecretRefError(name, path, `secret "${name}" is not UTF-8 text without NUL bytes: use it as a file (secrets: [{name: ${name}}])`),
    sink,
  );
  return '';
}

/** Every secret a spec names (env, registry auth, files): a secret an app names cannot be deleted. */
export function referencedSecrets(spec: ContainersSpec): Set<string> {
  const names = new Set<string>();
  for (const container of [...spec.spec.containers, ...(spec.spec.initContainers ?? [])]) {
    for (const env of container.env ?? []) if (env.fromSecret !== undefined) names.add(env.fromSecret);
    if (container.auth?.fromSecret !== undefined) names.add(container.auth.fromSecret);
    for (const file of container.secrets ?? []) names.add(file.name);
  }
  return names;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8Text(value: Buffer): string | undefined {
  try {
    const decoded = strictUtf8.decode(value);
    return decoded.includes('\0') ? undefined : decoded;
  } catch {
    return undefined;
  }
}

/**
 * Hash of what a device must run (its apps, each with the prefetch it carries, the agent release
 * when it has one, the jobs it must run or stop); the revision grows only when this changes, so a
 * prefetch that comes or goes is a new document. Without an agent section or jobs it is
 * the apps' hash alone, so a document that has neither keeps the hash it had and is not issued
 * again for nothing; an empty jobs list hashes as none, as the document leaves it out.
 */
export function desiredHash(apps: readonly DesiredApp[], agent?: DesiredAgent, jobs: readonly DesiredJob[] = []): string {
  if (jobs.length > 0) return contentHash({ apps, ...(agent !== undefined ? { agent } : {}), jobs });
  return agent === undefined ? contentHash(apps) : contentHash({ apps, agent });
}
