/**
 * Maps a Flotilla container spec (an app's or a job's) onto Docker's container-create body. Pure: no
 * engine calls, no clock, no environment, so every field is checked by a fast
 * unit test and the same spec always yields the same options.
 *
 * Docker semantics worth knowing when reading this:
 * - Setting `Entrypoint` makes the engine ignore the image's CMD, exactly as
 *   `docker run --entrypoint` does; `Cmd` then supplies the arguments.
 * - `args` without `command` keeps the image's ENTRYPOINT and replaces its CMD,
 *   as Kubernetes `args` does.
 * - Bind mounts go through `HostConfig.Mounts`, not `Binds`: a missing host
 *   path is an error instead of being silently created as an empty
 *   root-owned directory (which on a device hides a missing config or device
 *   node behind an app that starts but misbehaves).
 */
import type Dockerode from 'dockerode';
import { type ContainerSpec, parseDuration, parsePort, parseSize } from '../../shared/index.js';
import {
  containerName,
  initContainerName,
  jobContainerName,
  LABEL_APP,
  LABEL_APP_REVISION,
  LABEL_CONTAINER,
  LABEL_DEVICE,
  LABEL_INIT,
  LABEL_JOB,
  LABEL_JOB_ATTEMPT,
  LABEL_JOB_EXECUTION,
  LABEL_MANAGED,
  LABEL_SPEC_HASH,
} from './labels.js';
import type { CreateRequest, JobContainerRequest, RestartPolicy } from './runtime.js';

/** What Docker applies when a spec says nothing: a device must bring its apps back after a reboot. */
export const DEFAULT_RESTART_POLICY: RestartPolicy['name'] = 'unless-stopped';

const NS_PER_MS = 1_000_000;

type HostConfig = NonNullable<Dockerode.ContainerCreateOptions['HostConfig']>;
type MountSettings = NonNullable<HostConfig['Mounts']>[number];

export function toCreateOptions(req: CreateRequest): Dockerode.ContainerCreateOptions {
  return containerOptions(req.name ?? `${req.namePrefix ?? ''}${containerName(req.app, req.spec.name)}`, labelsFor(req), req.spec);
}

/**
 * A job's container: the job's labels instead of an app's, restart policy
 * `no` whatever the spec says (it runs once; a retry is a new attempt, a new
 * container), and no health check (its exit code decides).
 */
export function toJobCreateOptions(req: JobContainerRequest): Dockerode.ContainerCreateOptions {
  const { healthcheck: _judgedByExit, ...spec } = req.spec;
  const name = `${req.namePrefix ?? ''}${jobContainerName(req.execution, req.attempt, spec.name)}`;
  return containerOptions(name, jobLabelsFor(req), { ...spec, restartPolicy: { name: 'no' } });
}

/**
 * An init container: an app's labels and `flotilla.init`, restart policy `no` (it runs once,
 * to its exit; a rerun is a new container), no health check (its exit code decides).
 */
export function toInitCreateOptions(req: CreateRequest): Dockerode.ContainerCreateOptions {
  const { healthcheck: _judgedByExit, ...spec } = req.spec;
  const name = req.name ?? `${req.namePrefix ?? ''}${initContainerName(req.app, req.appRevision, spec.name)}`;
  return containerOptions(name, { ...labelsFor(req), [LABEL_INIT]: 'true' }, { ...spec, restartPolicy: { name: 'no' } });
}

function containerOptions(name: string, labels: Record<string, string>, spec: ContainerSpec): Dockerode.ContainerCreateOptions {
  const options: Dockerode.ContainerCreateOptions = {
    name,
    Image: spec.image,
    Labels: labels,
    HostConfig: hostConfig(spec),
  };

  if (spec.entrypoint) options.Entrypoint = [...spec.entrypoint];
  const cmd = spec.args ? [...(spec.command ?? []), ...spec.args] : spec.command ? [...spec.command] : undefined;
  if (cmd) options.Cmd = cmd;
  if (spec.workDir !== undefined) options.WorkingDir = spec.workDir;
  if (spec.user !== undefined) options.User = spec.user;

  const env = envList(spec);
  if (env) options.Env = env;

  if (spec.ports && spec.ports.length > 0) {
    const exposed: Record<string, Record<string, never>> = {};
    for (const port of spec.ports) {
      const { containerPort, protocol } = parsePort(port);
      exposed[`${containerPort}/${protocol}`] = {};
    }
    options.ExposedPorts = exposed;
  }

  const healthcheck = healthConfig(spec);
  if (healthcheck) options.Healthcheck = healthcheck;

  if (spec.networkAliases && spec.networkMode !== undefined) {
    options.NetworkingConfig = { EndpointsConfig: { [spec.networkMode]: { Aliases: [...spec.networkAliases] } } };
  }

  return options;
}

function labelsFor(req: CreateRequest): Record<string, string> {
  // Flotilla's labels last: they are the agent's record of ownership and must
  // win over anything a spec says (the schema already rejects `flotilla.*` keys).
  return {
    ...(req.spec.labels ?? {}),
    [LABEL_MANAGED]: 'true',
    [LABEL_APP]: req.app,
    [LABEL_CONTAINER]: req.spec.name,
    [LABEL_APP_REVISION]: String(req.appRevision),
    [LABEL_SPEC_HASH]: req.specHash,
    [LABEL_DEVICE]: req.deviceId,
  };
}

function jobLabelsFor(req: JobContainerRequest): Record<string, string> {
  // `flotilla.managed` so the engine's events about it reach the agent; no `flotilla.app`, so no app claims it.
  return {
    ...(req.spec.labels ?? {}),
    [LABEL_MANAGED]: 'true',
    [LABEL_JOB]: req.job,
    [LABEL_JOB_EXECUTION]: req.execution,
    [LABEL_JOB_ATTEMPT]: String(req.attempt),
    [LABEL_CONTAINER]: req.spec.name,
    [LABEL_DEVICE]: req.deviceId,
  };
}

/**
 * Only literal values reach Docker. `fromSecret` entries are resolved to
 * values by the hub before the desired state is sent; one that still has no
 * value here is skipped rather than set to an empty string that would look
 * like a deliberate setting.
 */
function envList(spec: ContainerSpec): string[] | undefined {
  if (!spec.env) return undefined;
  return spec.env.filter((e) => e.value !== undefined).map((e) => `${e.name}=${e.value}`);
}

/** A spec's restart policy, the default filled in. */
export function restartPolicyOf(spec: ContainerSpec): RestartPolicy {
  return spec.restartPolicy ?? { name: DEFAULT_RESTART_POLICY };
}

/** Docker's form of a restart policy. */
export function dockerRestartPolicy(policy: RestartPolicy): { Name: string; MaximumRetryCount: number } {
  return {
    Name: policy.name,
    // Docker rejects a retry count with any policy but on-failure.
    MaximumRetryCount: policy.name === 'on-failure' ? (policy.maximumRetryCount ?? 0) : 0,
  };
}

function hostConfig(spec: ContainerSpec): HostConfig {
  const host: HostConfig = { RestartPolicy: dockerRestartPolicy(restartPolicyOf(spec)) };

  if (spec.ports && spec.ports.length > 0) {
    const bindings: Record<string, { HostIp?: string; HostPort: string }[]> = {};
    for (const port of spec.ports) {
      const parsed = parsePort(port);
      const key = `${parsed.containerPort}/${parsed.protocol}`;
      // HostPort "" asks Docker for a random free host port.
      const binding = {
        ...(parsed.hostIp !== undefined ? { HostIp: parsed.hostIp } : {}),
        HostPort: parsed.hostPort !== undefined ? String(parsed.hostPort) : '',
      };
      bindings[key] = [...(bindings[key] ?? []), binding];
    }
    host.PortBindings = bindings;
  }

  if (spec.volumes && spec.volumes.length > 0) host.Mounts = spec.volumes.map(mountFor);

  if (spec.devices && spec.devices.length > 0) {
    host.Devices = spec.devices.map((d) => ({
      PathOnHost: d.hostPath,
      PathInContainer: d.containerPath ?? d.hostPath,
      CgroupPermissions: d.permissions ?? 'rwm',
    }));
  }

  if (spec.tmpfs && spec.tmpfs.length > 0) {
    const tmpfs: Record<string, string> = {};
    for (const entry of spec.tmpfs) {
      const colon = entry.indexOf(':');
      if (colon < 0) tmpfs[entry] = '';
      else tmpfs[entry.slice(0, colon)] = entry.slice(colon + 1);
    }
    host.Tmpfs = tmpfs;
  }

  if (spec.shmSize !== undefined) host.ShmSize = parseSize(spec.shmSize);

  if (spec.gpus !== undefined) {
    // Same request as `docker run --gpus all` / `--gpus N`: Count -1 means every GPU.
    host.DeviceRequests = [{ Driver: '', Count: spec.gpus === 'all' ? -1 : spec.gpus, Capabilities: [['gpu']] }];
  }

  if (spec.resources?.memory !== undefined) host.Memory = parseSize(spec.resources.memory);
  if (spec.resources?.cpus !== undefined) host.NanoCpus = Math.round(spec.resources.cpus * 1e9);

  if (spec.privileged !== undefined) host.Privileged = spec.privileged;
  if (spec.capAdd) host.CapAdd = [...spec.capAdd];
  if (spec.capDrop) host.CapDrop = [...spec.capDrop];
  if (spec.networkMode !== undefined) host.NetworkMode = spec.networkMode;

  return host;
}

/** `name:/path[:ro|rw]` is a named volume (created on first use), `/host:/path[:ro|rw]` a bind mount; the schema allows nothing else. */
function mountFor(volume: string): MountSettings {
  const [source = '', target = '', mode] = volume.split(':');
  return { Type: source.startsWith('/') ? 'bind' : 'volume', Source: source, Target: target, ReadOnly: mode === 'ro' };
}

/**
 * Only `exec` checks are Docker's to run. `http` and `tcp` checks are probed
 * by the agent's own health gate (it needs the result to decide on rollbacks,
 * and a scratch image has no curl to probe with), so they map to nothing here.
 */
function healthConfig(spec: ContainerSpec): Dockerode.HealthConfig | undefined {
  const check = spec.healthcheck;
  if (!check?.exec) return undefined;
  const config: Dockerode.HealthConfig = { Test: ['CMD', ...check.exec] };
  if (check.interval !== undefined) config.Interval = parseDuration(check.interval) * NS_PER_MS;
  if (check.timeout !== undefined) config.Timeout = parseDuration(check.timeout) * NS_PER_MS;
  if (check.startPeriod !== undefined) config.StartPeriod = parseDuration(check.startPeriod) * NS_PER_MS;
  if (check.retries !== undefined) config.Retries = check.retries;
  return config;
}
