/**
 * A Compose document → an app spec: each service becomes a container of one
 * app, named by the service. Pure: the document comes parsed and
 * interpolated, with the text of each `env_file` and the variables a bare
 * `environment` name takes (load-compose.ts reads them), so every field is a
 * fast unit test.
 *
 * Invariants:
 * - Every field that cannot be mapped is a problem naming its path
 *   (`services.web.build`), all of them in one list, and no spec is returned
 *   when there is any: a file is applied whole or not at all.
 * - Nothing is dropped in silence: a field is either mapped, refused, or (a
 *   secret's value, a network to create, `expose`) named in `notes`.
 *
 * Decisions, where Compose and a fleet differ:
 * - `restart` absent is Compose's default, `no`, written out (the spec's own
 *   default is `unless-stopped`): the file runs as it runs on a bench board. A
 *   note names those services, since they stay down after a device reboots.
 * - `environment: [NAME]` (or `NAME:` with no value) takes NAME from the
 *   environment of the CLI, as Compose does; unset, it is a problem, where
 *   Compose would leave it out, since the value is stored and sent to a fleet.
 * - Networks are not created by Flotilla: a service joins at most one (the
 *   spec's `networkMode`), which must exist on the device (`docker network
 *   create NAME`); as on Compose's networks, the service name is one of its
 *   aliases, so services keep finding each other by name. Services with no
 *   `networks:` run on Docker's default bridge, where names do not resolve:
 *   a note says so when there are several.
 * - A secret's name becomes a spec secret name (lower case, `_` and `.` as
 *   `-`: `db_password` → `db-password`) at the path Compose gives it
 *   (`/run/secrets/db_password`). The top-level `file:` is never read or
 *   uploaded: a note says to set the value with `flotilla secret set NAME`.
 *
 * Extensions, for what Compose cannot say (other `x-` keys are ignored, as Compose ignores them):
 *
 *   x-flotilla:                 # top level
 *     name: shop                # the app's name where the top-level name: is not given (docker-compose 1.29 refuses one)
 *     scheduling: {selectors: {site: lab}, devices: [dev-1]}   # as the spec's; --selector/--device replace it
 *     update: {…}               # the spec's spec.update
 *     rollout: {…}              # the spec's spec.rollout
 *     initPolicy: revision      # or start: the spec's spec.initPolicy
 *   services:
 *     migrate:
 *       x-flotilla:
 *         init: true            # an init container (spec.initContainers), in file order; others'
 *                               # depends_on it are dropped, since init containers run first
 *         healthcheck: {http: http://127.0.0.1:8080/health}   # the spec's healthcheck, replacing Compose's
 *         gpus: all             # the spec's gpus
 *         env: [{name: TOKEN, fromSecret: web-token}]   # env entries Compose cannot say, after environment's
 *         auth: {username: ci, fromSecret: registry-password}   # the spec's registry auth
 *         networkAliases: [web] # the spec's networkAliases, where there is no Compose network to hold them
 *
 * The app is named by `options.name`, else `name:` at the top of the file, else `x-flotilla.name`;
 * scheduling comes from `options.scheduling`, else `x-flotilla.scheduling`.
 */
import { parse as parseEnvFile } from 'dotenv';
import { validateAppSpec } from '../../shared/app-spec.js';
import { isName } from '../../shared/ids.js';
import type { AppSpec, ContainerSpec, InitContainerSpec, Scheduling } from '../../shared/schemas/spec.js';
import { parseSize, SIZE_PATTERN } from '../../shared/schemas/units.js';
import { formatIssue } from '../../shared/validate.js';
import { COMPOSE_SERVICE_FIELDS, COMPOSE_TOP_LEVEL, closestField } from './compose-fields.js';
import * as field from './from-compose-fields.js';
import { isRecord, scalarText } from './from-compose-fields.js';
import type { Variables } from './interpolate.js';

export interface ComposeOptions {
  /** The app's name (`--name`); else the file's top-level `name:`. */
  name?: string;
  /** `--selector` / `--device`; else the file's `x-flotilla.scheduling`. */
  scheduling?: Scheduling;
}

export interface ComposeInput {
  /** The parsed document, already interpolated. */
  document: Record<string, unknown>;
  /** What a bare `environment` name takes its value from: the CLI's environment. */
  variables: Variables;
  /** Each `env_file` as the file writes it → its text. */
  envFiles: ReadonlyMap<string, string>;
  options: ComposeOptions;
}

export type Conversion = { ok: true; spec: AppSpec; notes: string[] } | { ok: false; problems: string[] };

/** The `env_file` entries of every service, as written (relative to the Compose file's folder). */
export function envFilesOf(document: Record<string, unknown>): string[] {
  const services = isRecord(document.services) ? Object.values(document.services) : [];
  return services.flatMap((service) => {
    const envFile = isRecord(service) ? service.env_file : undefined;
    return envFile === undefined ? [] : (Array.isArray(envFile) ? envFile : [envFile]).filter((f) => typeof f === 'string');
  });
}

const TOP_LEVEL = new Set(['version', 'name', 'services', 'volumes', 'networks', 'secrets', 'x-flotilla']);

/** Why a Compose field has no spec form, where there is more to say than that. */
const REFUSED: Record<string, string> = {
  build: 'Flotilla does not build images: build and push it to a registry the devices reach, and name it in image:',
  extends: 'merge the service it extends into this one',
  profiles: 'every service of the file is deployed: leave out the services of other profiles',
  configs: 'mount the file from the device (an absolute bind mount) or make it a secret',
  scale: 'each device runs one container of a service',
  links: 'services on one network reach each other by service name: give them a network',
  external_links: 'services on one network reach each other by service name: give them a network',
  volumes_from: 'declare the volumes and mount them in both services',
  logging: "containers log as the device's Docker daemon is set to (/etc/docker/daemon.json), which flotilla logs reads: delete it",
  hostname: 'other services reach this one by its service name on a network, which is an alias of the container: delete it',
  extra_hosts: "resolve those names through the device's DNS, or give the service they name a network alias",
  init: "Docker's --init has no spec form: start the command under an init (tini) in the image's entrypoint, or delete it (an init container is x-flotilla: {init: true})",
  stop_grace_period: 'the agent gives every container 10s to stop after SIGTERM: delete it, and have the process stop within that',
};

/**
 * Compose fields that change nothing Flotilla runs, taken and dropped with a note rather than
 * refused, since they are common in files written for one board: `expose` only documents ports,
 * which a network's services reach anyway; `container_name` would clash between two apps, so the
 * agent names the container itself.
 */
const IGNORED: Record<string, (service: string, app: string) => string> = {
  expose: () => "ignored: services on one network reach all of each other's ports; publish one on the device with ports:",
  container_name: (service, app) => `ignored: the agent names the container ${app}_${service}`,
};

export function composeToSpec(input: ComposeInput): Conversion {
  const { document, options } = input;
  const problems: string[] = [];
  const notes: string[] = [];
  for (const key of Object.keys(document)) {
    if (!TOP_LEVEL.has(key) && !key.startsWith('x-')) problems.push(refusal(key, key, COMPOSE_TOP_LEVEL));
  }
  const extension = isRecord(document['x-flotilla']) ? document['x-flotilla'] : {};
  const name = options.name ?? [document.name, extension.name].find((n): n is string => typeof n === 'string');
  for (const key of Object.keys(extension)) {
    if (!['name', 'scheduling', 'update', 'rollout', 'initPolicy'].includes(key)) {
      problems.push(`x-flotilla.${key}: not a Flotilla extension (name, scheduling, update, rollout, initPolicy)`);
    }
  }
  const volumes = declaredVolumes(document.volumes, problems);
  const networks = declaredNetworks(document.networks, problems);
  const secrets = declaredSecrets(document.secrets, problems);

  const services = isRecord(document.services) ? document.services : {};
  const names = Object.keys(services);
  if (names.length === 0) problems.push('services: no service to deploy');
  const initNames = new Set(names.filter((name) => isRecord(services[name]) && extensionOf(services[name]).init === true));
  const context: ServiceContext = { input, app: name, volumes, networks, secrets, services: new Set(names), initNames, problems, notes };

  const containers: ContainerSpec[] = [];
  const initContainers: InitContainerSpec[] = [];
  const usedNetworks = new Set<string>();
  const usedSecrets = new Set<string>();
  for (const name of names) {
    const service = services[name];
    const at = `services.${name}`;
    if (!isName(name)) {
      problems.push(
        `${at}: the service name must be a DNS label (a-z, 0-9, "-", at most 63) to name a container: ${renaming(name, names)}`,
      );
      continue;
    }
    if (!isRecord(service)) {
      problems.push(`${at}: expected the service's fields`);
      continue;
    }
    const container = serviceContainer(name, service, context);
    if (container === undefined) continue;
    if (container.networkMode !== undefined && networks.has(container.networkMode)) usedNetworks.add(container.networkMode);
    for (const secret of readServiceSecretSources(service)) usedSecrets.add(secret);
    if (initNames.has(name)) {
      const init = asInit(container, `${at}`, problems);
      if (init) initContainers.push(init);
    } else containers.push(container);
  }
  if (names.length > 0 && containers.length === 0 && initNames.size === names.length) {
    problems.push('services: every service is an init container (x-flotilla.init): an app needs at least one that keeps running');
  }

  for (const network of usedNetworks) {
    notes.push(`network ${network}: Flotilla does not create networks: create it on each device (docker network create ${network})`);
  }
  for (const source of usedSecrets) {
    const declared = secrets.get(source);
    if (declared === undefined) continue;
    const from = declared.file !== undefined ? ` from ${declared.file}` : '';
    notes.push(
      `secret ${source}: its value is not uploaded${from}: set it before applying with flotilla secret set ${secretName(source)} --from-file ${declared.file ?? 'FILE'}`,
    );
  }
  // A one-shot step others wait to complete is meant to exit; any other service without restart: stays down.
  const completedOnes = new Set(
    containers.flatMap((c) =>
      Object.entries(c.dependsOn ?? {})
        .filter(([, on]) => on === 'completed')
        .map(([n]) => n),
    ),
  );
  const unrestarted = containers.filter((c) => {
    const service = services[c.name];
    return isRecord(service) && service.restart === undefined && !completedOnes.has(c.name);
  });
  if (unrestarted.length > 0) {
    notes.push(
      `services without restart: ${unrestarted.map((c) => c.name).join(', ')}: Compose's default is no, so they stay down after the device reboots or their process exits; give them restart: unless-stopped to keep them running`,
    );
  }
  const bridged = containers.filter((c) => c.networkMode === undefined);
  if (bridged.length > 1) {
    notes.push(
      `services ${bridged.map((c) => c.name).join(', ')} have no network: on Docker's default bridge they cannot reach each other by service name as they do under Compose; give them one network, created on the devices`,
    );
  }

  if (name === undefined) {
    problems.push(
      'name: no app name: give --name APP, or x-flotilla: {name: APP} in the file (or name: at the top, which docker-compose 1.29 refuses)',
    );
  }
  const scheduling = options.scheduling ?? (extension.scheduling as Scheduling | undefined);
  if (scheduling === undefined) {
    problems.push(
      'no scheduling: give --selector key=value or --device ID (or x-flotilla.scheduling in the file) to say which devices run it',
    );
  }
  if (problems.length > 0) return { ok: false, problems };

  const spec = {
    name: name!,
    scheduling: scheduling!,
    spec: {
      containers,
      ...(initContainers.length > 0 ? { initContainers } : {}),
      ...(extension.initPolicy !== undefined ? { initPolicy: extension.initPolicy } : {}),
      ...(extension.update !== undefined ? { update: extension.update } : {}),
      ...(extension.rollout !== undefined ? { rollout: extension.rollout } : {}),
    },
  };
  const validated = validateAppSpec(spec);
  if (!validated.ok) {
    return {
      ok: false,
      problems: validated.issues.map((issue) => {
        const where = /^spec\.(containers|initContainers)\[(\d+)\](.*)$/.exec(issue.path);
        if (!where) return formatIssue(issue);
        const list = where[1] === 'containers' ? containers : initContainers;
        return `services.${list[Number(where[2])]?.name} (as ${issue.path}): ${inComposeWords(issue.message)}`;
      }),
    };
  }
  return { ok: true, spec: validated.value, notes };
}

/**
 * The spec's field names a shared message uses, as the Compose file writes them, so the fix it
 * names is one the operator can make in their file (`give it restart: "no"`, not `restartPolicy "no"`).
 */
const COMPOSE_WORDS: [RegExp, string][] = [
  [/\brestartPolicy\b/g, 'restart:'],
  [/\bdependsOn\b/g, 'depends_on'],
  [/\bnetworkMode\b/g, 'network_mode'],
];

function inComposeWords(message: string): string {
  return COMPOSE_WORDS.reduce((text, [word, compose]) => text.replace(word, compose), message);
}

interface ServiceContext {
  input: ComposeInput;
  /** The app's name, where known, for the Docker container names messages give (`shop_web`). */
  app: string | undefined;
  volumes: ReadonlySet<string>;
  /** Declared network → the network's name on the device. */
  networks: ReadonlyMap<string, string>;
  secrets: ReadonlyMap<string, { file?: string }>;
  services: ReadonlySet<string>;
  initNames: ReadonlySet<string>;
  problems: string[];
  notes: string[];
}

/** The service fields with a spec form; every other one is refused. */
const MAPPED = new Set([
  'image',
  'command',
  'entrypoint',
  'environment',
  'env_file',
  'ports',
  'volumes',
  'devices',
  'tmpfs',
  'shm_size',
  'privileged',
  'cap_add',
  'cap_drop',
  'network_mode',
  'networks',
  'restart',
  'depends_on',
  'healthcheck',
  'mem_limit',
  'cpus',
  'deploy',
  'labels',
  'user',
  'working_dir',
  'secrets',
  'x-flotilla',
]);

function serviceContainer(name: string, service: Record<string, unknown>, context: ServiceContext): ContainerSpec | undefined {
  const { problems } = context;
  const at = `services.${name}`;
  const before = problems.length;
  for (const key of Object.keys(service)) {
    if (MAPPED.has(key) || key.startsWith('x-')) continue;
    const ignored = IGNORED[key];
    if (ignored) context.notes.push(`${at}.${key}: ${ignored(name, context.app ?? 'APP')}`);
    else problems.push(refusal(`${at}.${key}`, key, COMPOSE_SERVICE_FIELDS));
  }
  if (service.image === undefined) problems.push(`${at}.image: required: Flotilla runs images from a registry the devices reach`);
  const container: ContainerSpec = { name, image: scalarText(service.image) };

  if (service.entrypoint !== undefined) setIf(container, 'entrypoint', field.words(service.entrypoint, `${at}.entrypoint`, problems));
  if (service.command !== undefined) setIf(container, 'command', field.words(service.command, `${at}.command`, problems));
  if (service.working_dir !== undefined) container.workDir = scalarText(service.working_dir);
  if (service.user !== undefined) container.user = scalarText(service.user);
  const env = environment(service, at, context);
  if (env.length > 0) container.env = env;
  if (Array.isArray(service.ports)) {
    const ports = service.ports.map((p, i) => field.port(p, `${at}.ports[${i}]`, problems)).filter(defined);
    if (ports.length > 0) container.ports = ports;
  }
  const mounts = (Array.isArray(service.volumes) ? service.volumes : []).map((v, i) =>
    field.mount(v, context.volumes, `${at}.volumes[${i}]`, problems),
  );
  const volumes = mounts.flatMap((m) => (m && 'volume' in m ? [m.volume] : []));
  const tmpfs = [
    ...(service.tmpfs === undefined ? [] : (Array.isArray(service.tmpfs) ? service.tmpfs : [service.tmpfs]).map(scalarText)),
    ...mounts.flatMap((m) => (m && 'tmpfs' in m ? [m.tmpfs] : [])),
  ];
  if (volumes.length > 0) container.volumes = volumes;
  if (tmpfs.length > 0) container.tmpfs = tmpfs;
  if (Array.isArray(service.devices)) {
    const devices = service.devices.map((d, i) => field.device(d, `${at}.devices[${i}]`, problems)).filter(defined);
    if (devices.length > 0) container.devices = devices;
  }
  if (service.shm_size !== undefined) setIf(container, 'shmSize', field.size(service.shm_size, `${at}.shm_size`, problems));
  if (service.privileged !== undefined) container.privileged = service.privileged === true;
  if (Array.isArray(service.cap_add)) container.capAdd = service.cap_add.map(scalarText);
  if (Array.isArray(service.cap_drop)) container.capDrop = service.cap_drop.map(scalarText);
  network(container, service, at, context);
  container.restartPolicy =
    service.restart === undefined ? { name: 'no' } : (field.restartPolicy(service.restart, `${at}.restart`, problems) ?? { name: 'no' });
  const resources = resourcesOf(service, at, problems);
  if (resources) container.resources = resources;
  if (service.labels !== undefined) {
    const labels = Object.fromEntries(field.assignments(service.labels).map(([key, value]) => [key, value ?? '']));
    if (Object.keys(labels).length > 0) container.labels = labels;
  }
  if (isRecord(service.healthcheck)) setIf(container, 'healthcheck', field.healthcheck(service.healthcheck, `${at}.healthcheck`, problems));
  const dependsOn = dependencies(service.depends_on, at, context);
  if (dependsOn && Object.keys(dependsOn).length > 0) container.dependsOn = dependsOn;
  const secretFiles = serviceSecrets(service.secrets, at, context);
  if (secretFiles.length > 0) container.secrets = secretFiles;
  serviceExtension(container, service, at, problems);
  return problems.length === before ? container : undefined;
}

function environment(service: Record<string, unknown>, at: string, context: ServiceContext): NonNullable<ContainerSpec['env']> {
  const values = new Map<string, string>();
  const envFiles = service.env_file === undefined ? [] : Array.isArray(service.env_file) ? service.env_file : [service.env_file];
  for (const file of envFiles) {
    const text = context.input.envFiles.get(scalarText(file));
    if (text === undefined) continue; // the loader said why it could not read it
    // dotenv's parser: `KEY=value`, quotes, `#` comments, `export KEY=…`, as Compose reads an env_file.
    for (const [key, value] of Object.entries(parseEnvFile(text))) values.set(key, value);
  }
  for (const [key, value] of field.assignments(service.environment)) {
    if (value !== undefined) {
      values.set(key, value);
      continue;
    }
    const fromCli = context.input.variables[key];
    if (fromCli === undefined) {
      context.problems.push(
        `${at}.environment.${key}: has no value and ${key} is not set in the environment of flotilla: set it, or write ${key}=VALUE`,
      );
    } else values.set(key, fromCli);
  }
  return [...values].map(([name, value]) => ({ name, value }));
}

function network(container: ContainerSpec, service: Record<string, unknown>, at: string, context: ServiceContext): void {
  const { problems } = context;
  if (service.network_mode !== undefined) {
    const mode = scalarText(service.network_mode);
    if (service.networks !== undefined) problems.push(`${at}.networks: cannot be used with network_mode`);
    if (mode.startsWith('service:')) {
      const target = mode.slice('service:'.length);
      problems.push(
        `${at}.network_mode: "${mode}": has no spec form: write container:${context.app ?? 'APP'}_${target} (the agent names a service's container APP_SERVICE)`,
      );
    } else container.networkMode = mode;
    return;
  }
  if (service.networks === undefined) return;
  const entries: [string, unknown][] = Array.isArray(service.networks)
    ? service.networks.map((n) => [scalarText(n), null])
    : isRecord(service.networks)
      ? Object.entries(service.networks)
      : [];
  const joined = entries.filter(([name]) => name !== 'default');
  if (joined.length > 1) {
    problems.push(
      `${at}.networks: a Flotilla container joins one network, this service names ${joined.length} (${joined.map(([n]) => n).join(', ')}): keep one`,
    );
    return;
  }
  const [only] = joined;
  if (only === undefined) return;
  const [name, settings] = only;
  const device = context.networks.get(name);
  if (device === undefined) {
    problems.push(`${at}.networks.${name}: not declared under the top-level networks:`);
    return;
  }
  container.networkMode = device;
  const aliases = [container.name];
  if (isRecord(settings)) {
    for (const [key, value] of Object.entries(settings)) {
      if (key === 'aliases' && Array.isArray(value)) aliases.push(...value.map(scalarText));
      else if (!key.startsWith('x-')) problems.push(`${at}.networks.${name}.${key}: not supported by the app spec (only aliases)`);
    }
  }
  if (!context.initNames.has(container.name)) container.networkAliases = [...new Set(aliases)];
}

function resourcesOf(service: Record<string, unknown>, at: string, problems: string[]): ContainerSpec['resources'] | undefined {
  const resources: NonNullable<ContainerSpec['resources']> = {};
  let limits: Record<string, unknown> = {};
  if (isRecord(service.deploy)) {
    for (const [key, value] of Object.entries(service.deploy)) {
      if (key === 'resources' && isRecord(value)) {
        for (const [kind, settings] of Object.entries(value)) {
          if (kind === 'limits' && isRecord(settings)) limits = settings;
          else problems.push(`${at}.deploy.resources.${kind}: not supported by the app spec (only limits: memory and cpus)`);
        }
      } else if (!key.startsWith('x-')) {
        problems.push(
          `${at}.deploy.${key}: not supported by the app spec${key === 'replicas' ? ': each device runs one container of a service' : ''}`,
        );
      }
    }
    for (const key of Object.keys(limits)) {
      if (key !== 'memory' && key !== 'cpus')
        problems.push(`${at}.deploy.resources.limits.${key}: not supported by the app spec (memory and cpus)`);
    }
  }
  const memory = pick(service.mem_limit, limits.memory, `${at}.mem_limit`, 'deploy.resources.limits.memory', sameSize, problems);
  if (memory !== undefined) setIf(resources, 'memory', field.size(memory, `${at}.mem_limit`, problems));
  const cpus = pick(service.cpus, limits.cpus, `${at}.cpus`, 'deploy.resources.limits.cpus', sameNumber, problems);
  if (cpus !== undefined) resources.cpus = Number(cpus);
  return Object.keys(resources).length > 0 ? resources : undefined;
}

/**
 * One of a field and its `deploy.resources.limits` twin. Both is a problem only when they say
 * different things (as in Compose): `64m` and `64M` are one size, `"0.50"` and `0.5` one number.
 */
function pick(
  direct: unknown,
  limit: unknown,
  at: string,
  twin: string,
  same: (a: string, b: string) => boolean,
  problems: string[],
): unknown {
  if (direct !== undefined && limit !== undefined && !same(scalarText(direct), scalarText(limit))) {
    problems.push(`${at}: ${scalarText(direct)} differs from ${twin} (${scalarText(limit)}): give one`);
  }
  return direct ?? limit;
}

/** Sizes in bytes; text that is no size is compared as text (field.size then says what is wrong with it). */
function sameSize(a: string, b: string): boolean {
  const pattern = new RegExp(SIZE_PATTERN);
  return pattern.test(a) && pattern.test(b) ? parseSize(a) === parseSize(b) : a === b;
}

function sameNumber(a: string, b: string): boolean {
  return a.trim() !== '' && b.trim() !== '' && Number.isFinite(Number(a)) ? Number(a) === Number(b) : a === b;
}

const CONDITIONS = {
  service_started: 'started',
  service_healthy: 'healthy',
  service_completed_successfully: 'completed',
} as const;

function dependencies(value: unknown, at: string, context: ServiceContext): ContainerSpec['dependsOn'] | undefined {
  if (value === undefined) return undefined;
  const entries: [string, unknown][] = Array.isArray(value)
    ? value.map((name) => [scalarText(name), undefined])
    : isRecord(value)
      ? Object.entries(value)
      : [];
  const dependsOn: Record<string, 'started' | 'healthy' | 'completed'> = {};
  for (const [name, settings] of entries) {
    if (!context.services.has(name)) {
      context.problems.push(`${at}.depends_on.${name}: no such service`);
      continue;
    }
    if (context.initNames.has(name)) continue; // init containers all complete before any container starts
    let condition: keyof typeof CONDITIONS = 'service_started';
    if (isRecord(settings)) {
      condition = (scalarText(settings.condition) || 'service_started') as keyof typeof CONDITIONS;
      // Refused rather than dropped: the file says this service starts without its dependency, which Flotilla would wait for.
      if (settings.required === false) {
        context.problems.push(
          `${at}.depends_on.${name}.required: false has no spec form: Flotilla waits for every dependency: delete the entry if the service starts without ${name}, else delete required: false`,
        );
      }
      if (settings.restart === true) {
        context.notes.push(
          `${at}.depends_on.${name}.restart: ignored: an update swaps ${name} before the services that depend on it, but does not restart one whose own spec is unchanged`,
        );
      }
    }
    const mapped = CONDITIONS[condition];
    if (mapped === undefined) context.problems.push(`${at}.depends_on.${name}.condition: "${condition}" is not a Compose condition`);
    else dependsOn[name] = mapped;
  }
  return dependsOn;
}

/** What to rename a service to: its lower-case form with `_` and `.` as `-` (`redis_cache` → `redis-cache`), when that is a free DNS label. */
function renaming(name: string, names: readonly string[]): string {
  const label = name.toLowerCase().replace(/[_.]/g, '-');
  const then = '(and the depends_on entries that name it)';
  return isName(label) && !names.includes(label) ? `rename it "${label}" ${then}` : `rename it ${then}`;
}

/** The spec's secret name for a Compose one: lower case, `_` and `.` as `-` (`db_password` → `db-password`). */
export function secretName(source: string): string {
  return source.toLowerCase().replace(/[_.]/g, '-');
}

function readServiceSecretSources(service: Record<string, unknown>): string[] {
  return (Array.isArray(service.secrets) ? service.secrets : []).map((s) => (isRecord(s) ? scalarText(s.source) : scalarText(s)));
}

function serviceSecrets(value: unknown, at: string, context: ServiceContext): NonNullable<ContainerSpec['secrets']> {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry, i) => {
    const here = `${at}.secrets[${i}]`;
    const source = isRecord(entry) ? scalarText(entry.source) : scalarText(entry);
    let target = `/run/secrets/${source}`;
    if (isRecord(entry)) {
      for (const key of Object.keys(entry)) {
        if (key === 'mode' && ownerReadOnly(entry.mode)) continue; // what the agent writes anyway
        if (key !== 'source' && key !== 'target' && !key.startsWith('x-')) {
          context.problems.push(`${here}.${key}: not supported: secret files are written with mode 0400, owned by root`);
        }
      }
      if (entry.target !== undefined) {
        const written = scalarText(entry.target);
        target = written.startsWith('/') ? written : `/run/secrets/${written}`;
      }
    }
    if (!context.secrets.has(source)) {
      context.problems.push(`${here}: secret "${source}" is not declared under the top-level secrets:`);
      return [];
    }
    const name = secretName(source);
    if (!isName(name)) {
      context.problems.push(`${here}: secret "${source}" cannot be named in Flotilla as "${name}": a secret name is a DNS label`);
      return [];
    }
    return [{ name, ...(target === `/run/secrets/${name}` ? {} : { path: target }) }];
  });
}

/**
 * A secret's `mode` asking for 0400, the mode the agent gives every secret file: `0400` (which
 * a YAML 1.2 parser reads as the number 400, docker-compose's as octal), `0o400`, 256, or the
 * text `"0400"`.
 */
function ownerReadOnly(mode: unknown): boolean {
  if (typeof mode === 'number') return mode === 0o400 || mode === 400;
  return typeof mode === 'string' && /^0?o?400$/.test(mode.trim());
}

function extensionOf(service: unknown): Record<string, unknown> {
  const extension = isRecord(service) ? service['x-flotilla'] : undefined;
  return isRecord(extension) ? extension : {};
}

function serviceExtension(container: ContainerSpec, service: Record<string, unknown>, at: string, problems: string[]): void {
  const extension = extensionOf(service);
  for (const [key, value] of Object.entries(extension)) {
    if (key === 'healthcheck') container.healthcheck = value as ContainerSpec['healthcheck'];
    else if (key === 'gpus') container.gpus = value as ContainerSpec['gpus'];
    // The spec's validation (composeToSpec's last step) checks the shapes of these, as of any field.
    else if (key === 'env') container.env = [...(container.env ?? []), ...(Array.isArray(value) ? value : [value])];
    else if (key === 'auth') container.auth = value as ContainerSpec['auth'];
    else if (key === 'networkAliases') container.networkAliases = value as ContainerSpec['networkAliases'];
    else if (key !== 'init') {
      problems.push(`${at}.x-flotilla.${key}: not a Flotilla extension of a service (init, healthcheck, gpus, env, auth, networkAliases)`);
    }
  }
}

/** A service marked `x-flotilla.init`: what only a long-running container has is refused. */
function asInit(container: ContainerSpec, at: string, problems: string[]): InitContainerSpec | undefined {
  const { ports, restartPolicy, healthcheck, dependsOn, networkAliases, ...init } = container;
  const refused = [
    ports && 'ports',
    restartPolicy && restartPolicy.name !== 'no' && 'restart',
    healthcheck && 'healthcheck',
    dependsOn && 'depends_on',
  ].filter((key): key is string => typeof key === 'string');
  for (const key of refused)
    problems.push(`${at}.${key}: an init container (x-flotilla.init) has none: it runs to completion before the app's containers start`);
  return refused.length === 0 ? init : undefined;
}

function declaredVolumes(value: unknown, problems: string[]): Set<string> {
  const declared = new Set<string>();
  for (const [name, settings] of Object.entries(isRecord(value) ? value : {})) {
    declared.add(name);
    for (const key of Object.keys(isRecord(settings) ? settings : {})) {
      if (key !== 'external' && !key.startsWith('x-')) {
        problems.push(`volumes.${name}.${key}: not supported: the agent makes a named volume with Docker's local driver and its defaults`);
      }
    }
  }
  return declared;
}

function declaredNetworks(value: unknown, problems: string[]): Map<string, string> {
  const declared = new Map<string, string>();
  for (const [name, settings] of Object.entries(isRecord(value) ? value : {})) {
    const fields = isRecord(settings) ? settings : {};
    declared.set(name, typeof fields.name === 'string' ? fields.name : name);
    for (const [key, setting] of Object.entries(fields)) {
      const fine = key === 'external' || key === 'name' || key.startsWith('x-') || (key === 'driver' && setting === 'bridge');
      if (!fine) problems.push(`networks.${name}.${key}: not supported: Flotilla does not create networks; create it on the devices`);
    }
  }
  return declared;
}

function declaredSecrets(value: unknown, problems: string[]): Map<string, { file?: string }> {
  const declared = new Map<string, { file?: string }>();
  for (const [name, settings] of Object.entries(isRecord(value) ? value : {})) {
    const fields = isRecord(settings) ? settings : {};
    declared.set(name, typeof fields.file === 'string' ? { file: fields.file } : {});
    for (const key of Object.keys(fields)) {
      if (!['file', 'environment', 'external'].includes(key) && !key.startsWith('x-')) {
        problems.push(`secrets.${name}.${key}: not supported: the value lives on the hub (flotilla secret set ${secretName(name)})`);
      }
    }
  }
  return declared;
}

/** Why `key` is refused: a reason of its own, a Compose field without a spec form, or not a Compose field at all (a typo?). */
function refusal(path: string, key: string, known: readonly string[]): string {
  if (REFUSED[key]) return `${path}: cannot be mapped: ${REFUSED[key]}`;
  if (known.includes(key)) return `${path}: cannot be mapped: a Compose field the app spec has no form for: delete it`;
  const closest = closestField(key, known);
  return `${path}: not a Compose field${closest ? ` (did you mean ${closest}?)` : ''}`;
}

function defined<T>(value: T | undefined): value is T {
  return value !== undefined;
}

function setIf<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) target[key] = value;
}
