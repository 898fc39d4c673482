/**
 * Validating an app spec: the schema first, then the rules a schema cannot
 * express (unique names, exactly one source per env value, no host port used twice,
 * image references the engine accepts).
 */

import { dependencyIssues } from './app-dependencies.js';
import { imageReferenceProblem } from './image-reference.js';
import { type AppSpec, AppSpec as AppSpecSchema, type ContainerSpec, type SecretFile, type UpdatePolicy } from './schemas/spec.js';
import { parseSize } from './schemas/units.js';
import { windowIssues } from './update-window.js';
import { type Validated, type ValidationIssue, validate } from './validate.js';

/** What an app's containers and its init containers have in common, as containerIssues reads them. */
type ContainerFields = Omit<ContainerSpec, 'ports' | 'healthcheck' | 'networkAliases'> & Partial<ContainerSpec>;

/** The smallest memory limit Docker accepts (6 MiB). */
const DOCKER_MIN_MEMORY = 6 * 1024 * 1024;

export function validateAppSpec(value: unknown): Validated<AppSpec> {
  const result = validate(AppSpecSchema, value);
  if (!result.ok) return result;
  const issues = semanticIssues(result.value);
  return issues.length === 0 ? result : { ok: false, issues };
}

function semanticIssues(app: AppSpec): ValidationIssue[] {
  const window = app.spec.update?.window;
  const inits = app.spec.initContainers ?? [];
  const names = new Set(app.spec.containers.map((c) => c.name));
  return [
    ...containerIssues(app.spec.containers, app.spec.update?.strategy),
    ...containerIssues(inits, undefined, 'spec.initContainers'),
    ...inits.flatMap((init, i) =>
      names.has(init.name)
        ? [{ path: `spec.initContainers[${i}].name`, message: `"${init.name}" is also the name of a container: names are one per app` }]
        : [],
    ),
    ...dependencyIssues(app.spec.containers, new Set(inits.map((init) => init.name))),
    ...(window ? windowIssues(window, 'spec.update.window') : []),
  ];
}

/**
 * The rules a schema cannot express over a spec's containers (`spec.containers[i]…` paths, or
 * under `field`); an app's, its init containers' and a job's alike.
 */
export function containerIssues(
  containers: readonly ContainerFields[],
  strategy?: UpdatePolicy['strategy'],
  field = 'spec.containers',
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const names = new Set<string>();
  const hostPorts = new Map<string, string>();
  containers.forEach((container, i) => {
    const at = `${field}[${i}]`;
    if (names.has(container.name)) issues.push({ path: `${at}.name`, message: `duplicate container name "${container.name}"` });
    names.add(container.name);
    const imageProblem = imageReferenceProblem(container.image);
    if (imageProblem) issues.push({ path: `${at}.image`, message: `is not an image reference Docker accepts: ${imageProblem}` });
    container.env?.forEach((env, j) => {
      if ((env.value === undefined) === (env.fromSecret === undefined)) {
        issues.push({ path: `${at}.env[${j}]`, message: 'must have exactly one of "value" or "fromSecret"' });
      }
    });
    if (container.auth && (container.auth.password === undefined) === (container.auth.fromSecret === undefined)) {
      issues.push({ path: `${at}.auth`, message: 'must have exactly one of "password" or "fromSecret"' });
    }
    issues.push(...secretFileIssues(container, at));
    container.ports?.forEach((port, j) => {
      const parsed = parsePort(port);
      const limit = [parsed.hostPort, parsed.containerPort].find((p) => p !== undefined && (p < 1 || p > 65535));
      if (limit !== undefined) issues.push({ path: `${at}.ports[${j}]`, message: `port ${limit} is outside 1-65535` });
      if (parsed.hostPort !== undefined) {
        const key = `${parsed.hostIp ?? ''}:${parsed.hostPort}/${parsed.protocol}`;
        const other = hostPorts.get(key);
        if (other)
          issues.push({
            path: `${at}.ports[${j}]`,
            message: `host port ${parsed.hostPort}/${parsed.protocol} is also published by ${other}`,
          });
        else hostPorts.set(key, `${at}.ports[${j}]`);
      }
    });
    if (container.resources?.memory !== undefined && parseSize(container.resources.memory) < DOCKER_MIN_MEMORY) {
      issues.push({
        path: `${at}.resources.memory`,
        message: 'must be at least 6m: Docker refuses smaller memory limits (a bare number means bytes)',
      });
    }
    if (strategy === 'start-then-kill') {
      const published = (container.ports ?? []).findIndex((port) => parsePort(port).hostPort !== undefined);
      if (published >= 0) {
        issues.push({
          path: 'spec.update.strategy',
          message: `start-then-kill runs the old and the new version side by side, so the host port of ${at}.ports[${published}] would clash: use download-then-kill, or publish no host port`,
        });
      }
      if (container.networkMode === 'host') {
        issues.push({
          path: 'spec.update.strategy',
          message: `start-then-kill cannot run two versions of ${at} side by side on the host's network: use download-then-kill`,
        });
      }
    }
    if (container.networkAliases && ['bridge', 'host', 'none', 'default', undefined].includes(container.networkMode)) {
      issues.push({
        path: `${at}.networkAliases`,
        message: 'needs networkMode set to a user-defined network (docker network create NAME): Docker ignores aliases elsewhere',
      });
    }
    const healthcheckKinds = ['http', 'tcp', 'exec'].filter((k) => container.healthcheck?.[k as 'http'] !== undefined);
    if (container.healthcheck && healthcheckKinds.length !== 1) {
      issues.push({ path: `${at}.healthcheck`, message: 'must have exactly one of "http", "tcp" or "exec"' });
    }
    const probed = healthcheckKinds.find((kind) => kind !== 'exec');
    if (probed && (container.networkMode === 'none' || container.networkMode?.startsWith('container:'))) {
      // The agent probes http and tcp checks from the host, at the container's own address.
      issues.push({
        path: `${at}.healthcheck.${probed}`,
        message: `is probed by the agent at the container's own address, and with networkMode ${container.networkMode} it has none: use an exec check (exec: [wget, -q, -O-, http://localhost:PORT/], run inside the container)${container.networkMode === 'none' ? '' : ', or put the check on the container whose network it shares'}`,
      });
    }
  });
  return issues;
}

/** Where a secret file lands in the container: Compose's default is `/run/secrets/<name>`. */
export function secretFilePath(secret: SecretFile): string {
  return secret.path ?? `/run/secrets/${secret.name}`;
}

function secretFileIssues(container: ContainerSpec, at: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const paths = new Map<string, string>();
  container.secrets?.forEach((secret, j) => {
    const path = secretFilePath(secret);
    if (secret.data !== undefined) {
      issues.push({
        path: `${at}.secrets[${j}].data`,
        message: 'is filled in by the hub from the named secret: store the value with `flotilla secret set`',
      });
    }
    if (path.split('/').some((segment) => segment === '.' || segment === '..')) {
      issues.push({ path: `${at}.secrets[${j}].path`, message: 'must not contain "." or ".." segments' });
    }
    const other = paths.get(path);
    if (other) issues.push({ path: `${at}.secrets[${j}]`, message: `file ${path} is also written by ${other}` });
    else paths.set(path, `${at}.secrets[${j}]`);
  });
  return issues;
}

export interface PortMapping {
  hostIp?: string;
  hostPort?: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** Parses a port string the schema has accepted: `[ip:]host:container[/proto]` or `container[/proto]`. */
export function parsePort(text: ContainerSpec['ports'] extends (infer T)[] | undefined ? T : never): PortMapping {
  const [address, proto] = text.split('/') as [string, string | undefined];
  const protocol = proto === 'udp' ? 'udp' : 'tcp';
  const parts = address.split(':');
  const containerPort = Number(parts.pop());
  const hostPort = parts.length > 0 ? Number(parts.pop()) : undefined;
  const hostIp = parts.length > 0 ? parts.pop() : undefined;
  return {
    containerPort,
    protocol,
    ...(hostPort !== undefined ? { hostPort } : {}),
    ...(hostIp !== undefined ? { hostIp } : {}),
  };
}
