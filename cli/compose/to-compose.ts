/**
 * An app spec as a Compose file (`flotilla export APP --format compose`), for running the same
 * app on a bench board with Debian's `docker-compose` (1.29, the Compose specification without a
 * `version:` key). Pure: the spec in, a plain document out; `composeYaml` adds the comments.
 *
 * The mapping, field by field (`convert` reads it back, cli/compose/from-compose.ts):
 * - `entrypoint`, `command`, `workDir`, `user`, `env` (literal values), `ports`, `volumes`,
 *   `devices`, `tmpfs`, `shmSize`, `privileged`, `capAdd`/`capDrop`, `restartPolicy`, `labels`
 *   and `resources` (`mem_limit`, `cpus`: both honoured by docker-compose without swarm, where
 *   `deploy.resources.limits` needs `--compatibility`) have a Compose field of the same meaning.
 * - `args` is appended to `command`, which is what Docker runs either way.
 * - `restartPolicy` absent is Flotilla's default `unless-stopped`, written out: Compose's own
 *   default is `no`, and a bench board should bring the app back after a reboot as a device does.
 * - `networkMode` bridge, host, none or `container:NAME` is `network_mode`; any other name is a
 *   network the device made, so it is `networks: {NAME: {aliases}}` declared `external`.
 *   Without a networkMode Compose puts the services on the project's own network.
 * - `dependsOn` is the long `depends_on` form: started, healthy, completed become
 *   `service_started`, `service_healthy`, `service_completed_successfully` (docker-compose 1.29
 *   takes all three in a file without `version:`).
 * - Init containers are services with `restart: "no"` and `x-flotilla: {init: true}`, first in
 *   the file and in their order, each depending on the one before it completing, and every app
 *   service depends on every init container completing (`convert` drops those dependencies:
 *   init containers always run first). `docker-compose up` runs them on every `up`, as
 *   `initPolicy: start` does.
 * - `healthcheck.exec` is `test: [CMD, …]`. The agent's own `http` and `tcp` probes have no
 *   Compose form: the file runs an equivalent CMD-SHELL test inside the container (busybox's
 *   `wget` or `nc`, which the image must have), and the probe itself is kept in the service's
 *   `x-flotilla.healthcheck`, which `convert` takes over the `healthcheck`.
 * - `secrets` are Compose file secrets, declared at the top level as `file: ./secrets/NAME`
 *   beside the Compose file: the value lives in the hub and is never exported.
 * - Every `$` in a value is written `$$`: Compose (and `convert`) replace `${VAR}` and `$VAR`
 *   with the environment of whoever runs them, where the spec means the characters.
 * - Sizes are written in docker-compose's units (`512Mi` as `512m`: both binary), durations
 *   in days as hours (docker-compose 1.29 has no `d`).
 *
 * What Compose cannot say is kept under `x-flotilla`, which Compose ignores: at the top level
 * the app's `name` (docker-compose 1.29 refuses a top-level `name:`), `scheduling`, `update`,
 * `rollout` and `initPolicy`; in a service, `init`, `env` entries taken from a hub secret
 * (`fromSecret`), registry `auth`, `gpus`, the agent's `healthcheck` probe, and
 * `networkAliases` without a user-defined network.
 */
import type { AppSpec, ContainerSpec, DependencyCondition, EnvVar, InitContainerSpec } from '../../shared/schemas/spec.js';
import { yaml } from '../yaml.js';

/** The extension key, at the top level and in a service. */
export const COMPOSE_EXTENSION = 'x-flotilla';

/** Docker's own network modes; any other `networkMode` is a network made on the device. */
const NETWORK_MODES = new Set(['bridge', 'host', 'none']);

export const COMPOSE_CONDITIONS: Record<DependencyCondition, string> = {
  started: 'service_started',
  healthy: 'service_healthy',
  completed: 'service_completed_successfully',
};

/** Flotilla's default restart policy (agent/runtime/create-options.ts), written out. */
const DEFAULT_RESTART = 'unless-stopped';

export interface ComposeHealthcheck {
  test: string[];
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}

/** A Compose service, in the order its keys are written. */
export interface ComposeService {
  image: string;
  entrypoint?: string[];
  command?: string[];
  user?: string;
  working_dir?: string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  devices?: string[];
  tmpfs?: string[];
  shm_size?: string;
  privileged?: boolean;
  cap_add?: string[];
  cap_drop?: string[];
  network_mode?: string;
  networks?: Record<string, { aliases?: string[] }>;
  restart?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: ComposeHealthcheck;
  mem_limit?: string;
  cpus?: number;
  labels?: Record<string, string>;
  secrets?: (string | { source: string; target: string })[];
  'x-flotilla'?: ServiceExtension;
}

/** What a service says that Compose cannot. */
export interface ServiceExtension {
  init?: true;
  env?: EnvVar[];
  auth?: ContainerSpec['auth'];
  gpus?: ContainerSpec['gpus'];
  healthcheck?: ContainerSpec['healthcheck'];
  networkAliases?: string[];
}

/** What the app says that Compose cannot. */
export interface AppExtension {
  name: string;
  scheduling: AppSpec['scheduling'];
  update?: AppSpec['spec']['update'];
  rollout?: AppSpec['spec']['rollout'];
  initPolicy?: AppSpec['spec']['initPolicy'];
}

export interface ComposeDocument {
  'x-flotilla': AppExtension;
  services: Record<string, ComposeService>;
  volumes?: Record<string, Record<string, never>>;
  networks?: Record<string, { external: true }>;
  secrets?: Record<string, { file: string }>;
}

export function toCompose(app: AppSpec): ComposeDocument {
  const inits = app.spec.initContainers ?? [];
  const initNames = inits.map((c) => c.name);
  const services: Record<string, ComposeService> = {};
  inits.forEach((init, i) => {
    const previous = initNames[i - 1];
    const after = previous !== undefined ? { [previous]: { condition: COMPOSE_CONDITIONS.completed } } : {};
    const made = service(init, after);
    services[init.name] = { ...made, restart: 'no', 'x-flotilla': { init: true, ...made['x-flotilla'] } };
  });
  for (const container of app.spec.containers) {
    const dependsOn: Record<string, { condition: string }> = {};
    for (const name of initNames) dependsOn[name] = { condition: COMPOSE_CONDITIONS.completed };
    for (const [name, condition] of Object.entries(container.dependsOn ?? {}))
      dependsOn[name] = { condition: COMPOSE_CONDITIONS[condition] };
    services[container.name] = service(container, dependsOn);
  }

  const all: InitContainerSpec[] = [...inits, ...app.spec.containers];
  const doc: ComposeDocument = { 'x-flotilla': appExtension(app), services };
  const volumes = namedVolumes(all);
  if (volumes.length > 0) doc.volumes = Object.fromEntries(volumes.map((name) => [name, {}]));
  const networks = [...new Set(all.flatMap((c) => (userNetwork(c.networkMode) ? [c.networkMode!] : [])))];
  if (networks.length > 0) doc.networks = Object.fromEntries(networks.map((name) => [name, { external: true as const }]));
  const secrets = [...new Set(all.flatMap((c) => (c.secrets ?? []).map((s) => s.name)))];
  if (secrets.length > 0) doc.secrets = Object.fromEntries(secrets.map((name) => [name, { file: `./secrets/${name}` }]));
  return escapeDollars(doc);
}

/** Every string value with `$` as `$$`, Compose's escape, so no value is read as a variable; keys are never interpolated. */
function escapeDollars<T>(value: T): T {
  if (typeof value === 'string') return value.replaceAll('$', '$$$$') as T;
  if (Array.isArray(value)) return value.map(escapeDollars) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, escapeDollars(v)])) as T;
  }
  return value;
}

function appExtension(app: AppSpec): AppExtension {
  const { update, rollout, initPolicy } = app.spec;
  return {
    name: app.name,
    scheduling: app.scheduling,
    ...(update !== undefined ? { update } : {}),
    ...(rollout !== undefined ? { rollout } : {}),
    ...(initPolicy !== undefined ? { initPolicy } : {}),
  };
}

/**
 * A container as a service, keys in the order Compose files are usually written. An init
 * container is the same shape without ports, restart policy, healthcheck, dependencies and
 * aliases, so reading those fields off it finds nothing.
 */
function service(spec: InitContainerSpec, dependsOn: Record<string, { condition: string }>): ComposeService {
  const container: Partial<ContainerSpec> & InitContainerSpec = spec;
  const out: ComposeService = { image: container.image };
  if (container.entrypoint !== undefined) out.entrypoint = [...container.entrypoint];
  const command = container.args !== undefined ? [...(container.command ?? []), ...container.args] : container.command;
  if (command !== undefined) out.command = [...command];
  if (container.user !== undefined) out.user = container.user;
  if (container.workDir !== undefined) out.working_dir = container.workDir;
  const literal = (container.env ?? []).filter((e) => e.value !== undefined && e.fromSecret === undefined);
  if (literal.length > 0) out.environment = Object.fromEntries(literal.map((e) => [e.name, e.value!]));
  if (container.ports !== undefined) out.ports = [...container.ports];
  if (container.volumes !== undefined) out.volumes = [...container.volumes];
  if (container.devices !== undefined) {
    out.devices = container.devices.map((d) =>
      [d.hostPath, d.containerPath ?? d.hostPath, ...(d.permissions ? [d.permissions] : [])].join(':'),
    );
  }
  if (container.tmpfs !== undefined) out.tmpfs = [...container.tmpfs];
  if (container.shmSize !== undefined) out.shm_size = composeSize(container.shmSize);
  if (container.privileged !== undefined) out.privileged = container.privileged;
  if (container.capAdd !== undefined) out.cap_add = [...container.capAdd];
  if (container.capDrop !== undefined) out.cap_drop = [...container.capDrop];
  const network = container.networkMode;
  const aliases = container.networkAliases;
  if (network !== undefined && userNetwork(network)) out.networks = { [network]: aliases !== undefined ? { aliases: [...aliases] } : {} };
  else if (network !== undefined) out.network_mode = network;
  out.restart = restartOf(container.restartPolicy);
  if (Object.keys(dependsOn).length > 0) out.depends_on = dependsOn;
  const check = container.healthcheck;
  if (check !== undefined) out.healthcheck = healthcheck(check);
  if (container.resources?.memory !== undefined) out.mem_limit = composeSize(container.resources.memory);
  if (container.resources?.cpus !== undefined) out.cpus = container.resources.cpus;
  if (container.labels !== undefined) out.labels = { ...container.labels };
  if (container.secrets !== undefined) {
    out.secrets = container.secrets.map((s) => (s.path === undefined ? s.name : { source: s.name, target: s.path }));
  }

  const ext: ServiceExtension = {};
  const kept = (container.env ?? []).filter((e) => e.value === undefined || e.fromSecret !== undefined);
  if (kept.length > 0) ext.env = kept.map((e) => ({ ...e }));
  if (container.auth !== undefined) ext.auth = { ...container.auth };
  if (container.gpus !== undefined) ext.gpus = container.gpus;
  if (check?.http !== undefined || check?.tcp !== undefined) ext.healthcheck = { ...check };
  if (aliases !== undefined && !userNetwork(network)) ext.networkAliases = [...aliases];
  if (Object.keys(ext).length > 0) out['x-flotilla'] = ext;
  return out;
}

/** Compose's `restart`, Flotilla's default written out when the spec has none. */
function restartOf(policy: ContainerSpec['restartPolicy']): string {
  if (policy === undefined) return DEFAULT_RESTART;
  if (policy.name === 'on-failure' && policy.maximumRetryCount !== undefined) return `on-failure:${policy.maximumRetryCount}`;
  return policy.name;
}

/**
 * Docker's HEALTHCHECK for the spec's check. An http or tcp probe becomes the same check run
 * inside the container, where "localhost" is the container itself, as the agent reads it.
 */
export function healthcheck(check: NonNullable<ContainerSpec['healthcheck']>): ComposeHealthcheck {
  let test: string[];
  if (check.exec !== undefined) test = ['CMD', ...check.exec];
  else if (check.http !== undefined) test = ['CMD-SHELL', `wget -q -O /dev/null ${shellQuote(check.http)} || exit 1`];
  else if (check.tcp !== undefined) {
    const at = check.tcp.lastIndexOf(':');
    test = ['CMD-SHELL', `nc -z ${shellQuote(check.tcp.slice(0, at))} ${check.tcp.slice(at + 1)} || exit 1`];
  } else test = ['NONE'];
  const out: ComposeHealthcheck = { test };
  if (check.interval !== undefined) out.interval = composeDuration(check.interval);
  if (check.timeout !== undefined) out.timeout = composeDuration(check.timeout);
  if (check.retries !== undefined) out.retries = check.retries;
  if (check.startPeriod !== undefined) out.start_period = composeDuration(check.startPeriod);
  return out;
}

/** `512Mi` → `512m`, `1GB` stays: docker-compose reads b, k, m, g (binary, a trailing b allowed) and not `Ki`/`Mi`/`Gi`. */
export function composeSize(size: string): string {
  return size.replace(/([KMG])i$/, (_, unit: string) => unit.toLowerCase());
}

/** `7d` → `168h`: docker-compose 1.29 knows ms, s, m and h. */
export function composeDuration(duration: string): string {
  const days = /^([0-9]+(?:\.[0-9]+)?)d$/.exec(duration);
  return days ? `${Number(days[1]) * 24}h` : duration;
}

function userNetwork(mode: string | undefined): boolean {
  return mode !== undefined && !NETWORK_MODES.has(mode) && !mode.startsWith('container:');
}

function namedVolumes(containers: readonly InitContainerSpec[]): string[] {
  const names = containers.flatMap((c) => (c.volumes ?? []).map((v) => v.split(':')[0]!).filter((source) => !source.startsWith('/')));
  return [...new Set(names)];
}

/** Single quotes for a shell word, unless it needs none. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The Compose file's text: YAML 1.1 quoting, as docker-compose reads it (PyYAML), so `"no"`
 * and `"53:53"` stay strings; a header naming the app; a comment where a field holds less than
 * the spec (a secret's value, a probe run differently, settings only Flotilla follows).
 */
export function composeYaml(app: AppSpec, revision?: number): string {
  const compose = toCompose(app);
  const doc = new (yaml().Document)(compose, { version: '1.1' });
  const at = revision === undefined ? '' : ` revision ${revision}`;
  doc.commentBefore = [
    ` Flotilla app ${app.name}${at}, as a Compose file: docker-compose up -d runs it on one machine.`,
    ' x-flotilla holds what only Flotilla follows (scheduling, updates, rollout); Compose ignores it,',
    ` and "flotilla apply -f" of this file deploys it again as app ${app.name}.`,
  ].join('\n');
  keyComment(doc, [], 'secrets', ' The values live in the hub (flotilla secret set NAME): put each in ./secrets/NAME to run this here.');
  for (const [name, svc] of Object.entries(compose.services)) {
    const ext = svc['x-flotilla'];
    if (ext?.init === true) {
      keyComment(doc, ['services'], name, ' An init container: runs to completion before the app starts.');
    }
    if (ext?.healthcheck !== undefined) {
      keyComment(
        doc,
        ['services', name],
        'healthcheck',
        ' The agent probes this from the host (x-flotilla.healthcheck); here the image runs the same check.',
      );
    }
    const notes: string[] = [];
    if (ext?.env !== undefined) notes.push(` ${ext.env.map((e) => e.name).join(', ')}: set by the hub from its secrets, not by Compose.`);
    if (ext?.auth !== undefined) notes.push(' Registry credentials: run docker login before docker-compose pull.');
    if (notes.length > 0) keyComment(doc, ['services', name], 'x-flotilla', notes.join('\n'));
  }
  return doc.toString({ lineWidth: 0 });
}

function keyComment(doc: import('yaml').Document, path: string[], key: string, comment: string): void {
  const map = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (!yaml().isMap(map)) return;
  const pair = map.items.find((p) => yaml().isScalar(p.key) && p.key.value === key);
  if (pair !== undefined && yaml().isNode(pair.key)) pair.key.commentBefore = comment;
}
