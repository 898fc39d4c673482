/**
 * `flotilla describe device|app|job NAME` — everything the hub knows about one
 * object, in sections for people; `-o json|yaml` prints the hub's body. A device's
 * section lists the job executions it reported beside its apps, and the images it
 * downloads with what downloading has cost and saved it (cli/image-text.ts). An app's section
 * shows how it starts: its init containers, init policy, each container's dependencies, and
 * the start order the agent follows (shared/app-dependencies.ts).
 * `describe job NAME -w` prints it again on every change until the job ends
 * (job-watch.ts), and exits by how it ended.
 */
import type { Command } from 'commander';
import { dependenciesOf, startOrder } from '../../shared/app-dependencies.js';
import {
  type AppSpec,
  type ContainerSpec,
  describeWindow,
  type InitContainerSpec,
  type InitPolicy,
  secretFilePath,
  type UpdatePolicy,
} from '../../shared/index.js';
import { agentUpgradeFields } from '../agent-version-text.js';
import type { AppDetail, Device } from '../client.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { downloadsSection, imagesSection } from '../image-text.js';
import { cell, formatAge, formatFields, formatTable, indent, yesNo } from '../output.js';
import { formatScheduling } from './get.js';

export function registerDescribe(program: Command, io: CliIO): void {
  const describe = program.command('describe').description('show details of a device, an app or a job');

  describe
    .command('device')
    .aliases(['devices', 'dev'])
    .argument('<id>', 'device id')
    .description(
      'labels, host facts, apps and their containers, job executions, and image downloads (progress, rate, savings, budget) as the device last reported them',
    )
    .action(async (name: string, _options: unknown, command: Command) => {
      const device = await hubClient(command, io).call('devices.get', { id: name });
      render(io, globalOptions(command).output, device, () => describeDevice(device));
    });

  describe
    .command('app')
    .alias('apps')
    .argument('<name>', 'app name')
    .description('spec summary (containers, init containers, start order), revision, and the phase on every device it is scheduled to')
    .action(async (name: string, _options: unknown, command: Command) => {
      const app = await hubClient(command, io).call('apps.get', { name });
      render(io, globalOptions(command).output, app, () => describeApp(app));
    });

  describe
    .command('job')
    .alias('jobs')
    .argument('<name>', 'job name')
    .option(
      '-w, --watch',
      'print again on every change until the job ends: exit 0 when every device succeeded, 1 otherwise (failed, timed-out, canceled, expired, aborted)',
    )
    .description("the job's spec, counts per state with a progress bar, every device's execution, and the output of failed ones")
    .action(async (name: string, options: { watch?: boolean }, command: Command) => {
      const client = hubClient(command, io);
      const format = globalOptions(command).output;
      const { describeJob } = await import('../job-text.js');
      if (options.watch) {
        const { watchJob, exitByOutcome } = await import('./job-watch.js');
        exitByOutcome(await watchJob(io, client, name, { format, show: (job) => `${describeJob(job)}\n` }));
        return;
      }
      const job = await client.call('jobs.get', { name });
      render(io, format, job, () => describeJob(job));
    });
}

function timestamp(at: string | null, now: number): string {
  return at === null ? '<never>' : `${at} (${formatAge(at, now)} ago)`;
}

export function describeDevice(device: Device, now: number = Date.now()): string {
  const labels = Object.keys(device.labels)
    .sort()
    .map((key) => `${key}=${device.labels[key]}${typeof device.operatorLabels[key] === 'string' ? ' (operator)' : ''}`);
  const removed = Object.keys(device.operatorLabels)
    .filter((key) => device.operatorLabels[key] === null && Object.hasOwn(device.reportedLabels, key))
    .sort()
    .map((key) => `${key}=${device.reportedLabels[key]} (reported by the agent, removed by the operator)`);
  const revision =
    device.observedRevision === device.desiredRevision
      ? `${device.desiredRevision} (in sync)`
      : `desired ${device.desiredRevision}, observed ${device.observedRevision ?? '<none>'}`;
  let out = formatFields([
    ['Name', device.id],
    ['Online', yesNo(device.online)],
    ...(device.revokedAt !== undefined
      ? ([['Revoked', `${device.revokedAt} (its credentials are refused; its containers keep running until the device is wiped)`]] as const)
      : []),
    ...(device.idClash !== undefined
      ? ([
          [
            'ID Clash',
            `since ${device.idClash.since}: ${device.idClash.takeovers} connections took this id from each other in the last 10 minutes (from ${device.idClash.addresses.join(', ')}); two devices share it (a copied SD card?): register each with its own id`,
          ],
        ] as const)
      : []),
    ['Last Seen', timestamp(device.lastSeen, now)],
    ['Revision', revision],
    ['Labels', labels],
    ...(removed.length > 0 ? ([['Removed Labels', removed]] as const) : []),
    ...(device.runtimeError ? ([['Runtime Error', device.runtimeError]] as const) : []),
  ]);

  const host = device.host;
  if (host) {
    out += 'Host:\n';
    out += formatFields(
      [
        ['Hostname', host.hostname],
        ['OS/Arch', `${host.os}/${host.arch}`],
        ...(host.kernel ? ([['Kernel', host.kernel]] as const) : []),
        ['Docker', host.dockerVersion ?? '<unknown>'],
        ['Agent', host.agentVersion],
        ['Node', host.nodeVersion ?? '<unknown>'],
      ],
      '  ',
    );
  } else {
    out += formatFields([['Host', '<not reported yet>']]);
  }
  if (device.desiredAgentVersion !== undefined || device.agentUpgrade !== undefined) {
    out += 'Agent Upgrade:\n';
    out += formatFields(agentUpgradeFields(device, now), '  ');
  }

  out += appsSection(device);
  out += jobsSection(device);
  out += imagesSection(device.images, now);
  out += downloadsSection(device.downloads, now);
  return out;
}

/** The apps the device reported, and their containers. */
function appsSection(device: Device): string {
  if (device.apps.length === 0) return formatFields([['Apps', '<none>']]);
  let out = '';
  const apps = [...device.apps].sort((a, b) => (a.name < b.name ? -1 : 1));
  out += 'Apps:\n';
  out += indent(
    formatTable(
      ['NAME', 'REVISION', 'PHASE', 'MESSAGE'],
      apps.map((app) => [app.name, String(app.revision), app.phase, app.message ?? '']),
    ),
  );
  const containers = apps.flatMap((app) => app.containers.map((container) => ({ app: app.name, ...container })));
  if (containers.length === 0) {
    out += formatFields([['Containers', '<none>']]);
  } else {
    out += 'Containers:\n';
    out += indent(
      formatTable(
        ['APP', 'NAME', 'ID', 'IMAGE', 'STATE', 'RESTARTS'],
        containers.map((c) => [
          c.app,
          c.name,
          c.id.slice(0, 12),
          c.image,
          c.status ? `${c.state} (${c.status})` : c.state,
          String(c.restartCount),
        ]),
      ),
    );
  }
  return out;
}

/**
 * The job executions the device reported, as it said them: each job's state, attempt,
 * exit code and message (`flotilla describe job NAME` has the job's every device and the
 * output). None reported, no section: most devices run no job most of the time.
 */
function jobsSection(device: Device): string {
  if (device.jobs === undefined || device.jobs.length === 0) return '';
  const jobs = [...device.jobs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return `Jobs:\n${indent(
    formatTable(
      ['JOB', 'STATE', 'ATTEMPT', 'EXIT', 'MESSAGE'],
      jobs.map((job) => [
        job.name,
        job.state,
        String(job.attempt),
        job.exitCode === undefined ? '-' : job.container !== undefined ? `${job.exitCode} (${job.container})` : String(job.exitCode),
        job.message ?? '',
      ]),
    ),
  )}`;
}

export function describeApp(app: AppDetail, now: number = Date.now()): string {
  let out = formatFields([
    ['Name', app.name],
    ['Revision', String(app.revision)],
    ['Created', timestamp(app.createdAt, now)],
    ['Updated', timestamp(app.updatedAt, now)],
    // The prune scope of `apply --prune-scope`: which folder's prune may delete the app.
    ...(app.scope !== undefined ? [['Scope', app.scope] as const] : []),
    ['Scheduling', formatScheduling(app.spec.scheduling)],
    ['Update', updateText(app.spec.spec.update)],
    ...startFields(app.spec.spec),
  ]);
  const inits = app.spec.spec.initContainers ?? [];
  if (inits.length > 0) out += `Init Containers:\n${containersText(inits)}`;
  out += `Containers:\n${containersText(app.spec.spec.containers)}`;
  if (app.devices.length === 0) {
    out += formatFields([['Devices', '<none>']]);
    return out;
  }
  out += 'Devices:\n';
  out += indent(
    formatTable(
      ['NAME', 'ONLINE', 'PHASE', 'REVISION', 'MESSAGE'],
      [...app.devices]
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .map((d) => [d.id, yesNo(d.online), d.phase ?? '-', d.revision === null ? '-' : String(d.revision), d.message ?? '']),
    ),
  );
  return out;
}

/** Each container's name, then its fields, indented under a section heading. */
function containersText(containers: readonly (InitContainerSpec | ContainerSpec)[]): string {
  return containers.map((c) => `  ${cell(c.name)}:\n${formatFields(containerFields(c), '    ')}`).join('');
}

const INIT_POLICY_TEXT: Record<InitPolicy, string> = {
  revision: 'revision (init containers run once for each new revision)',
  start: 'start (init containers run for each new revision, and each time the containers start from nothing)',
};

/**
 * `Init Policy` and `Start Order` for an app with init containers or `dependsOn`, none for
 * any other: its containers start in spec order, which the Containers section shows already.
 * The order is the agent's own (startOrder), init containers first, one after the other.
 */
function startFields(spec: AppSpec['spec']): [string, string][] {
  const inits = spec.initContainers ?? [];
  const ordered = inits.length > 0 || spec.containers.some((c) => c.dependsOn !== undefined);
  return [
    ...(inits.length > 0 || spec.initPolicy !== undefined
      ? [['Init Policy', INIT_POLICY_TEXT[spec.initPolicy ?? 'revision']] as [string, string]]
      : []),
    ...(ordered
      ? [
          ['Start Order', [...inits.map((c) => `init ${c.name}`), ...startOrder(spec.containers).map((c) => c.name)].join(' → ')] as [
            string,
            string,
          ],
        ]
      : []),
  ];
}

/**
 * The update settings the spec sets, `<defaults>` for none: `strategy download-then-kill,
 * window mon-fri 02:00–04:00 Europe/Berlin`. A window without a zone is read on each
 * device's own clock, not this terminal's, so it says so.
 */
export function updateText(update: UpdatePolicy | undefined): string {
  if (update === undefined) return '<defaults>';
  const parts = [
    update.strategy ? `strategy ${update.strategy}` : '',
    update.healthTimeout ? `health timeout ${update.healthTimeout}` : '',
    update.minReadySeconds !== undefined ? `min ready ${update.minReadySeconds}s` : '',
    update.rollback ? `rollback ${update.rollback}` : '',
    update.window ? `window ${describeWindow(update.window, update.window.timezone ?? "(each device's own time zone)")}` : '',
  ];
  return parts.filter(Boolean).join(', ') || '<defaults>';
}

/**
 * What containerFields reads: an app's container, an init container (which has no ports,
 * restart policy, healthcheck, dependencies or aliases), or a job's.
 */
type AnyContainer = InitContainerSpec &
  Partial<Pick<ContainerSpec, 'ports' | 'restartPolicy' | 'healthcheck' | 'dependsOn' | 'networkAliases'>>;

/** The fields that are set, in the order a Compose file would list them; secrets are named, never shown. */
export function containerFields(c: AnyContainer): [string, string | string[]][] {
  const fields: [string, string | string[]][] = [['Image', c.image]];
  const argv = (list: string[]) => list.map((arg) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(' ');
  if (c.entrypoint) fields.push(['Entrypoint', argv(c.entrypoint)]);
  if (c.command) fields.push(['Command', argv(c.command)]);
  if (c.args) fields.push(['Args', argv(c.args)]);
  if (c.workDir) fields.push(['Work Dir', c.workDir]);
  if (c.user) fields.push(['User', c.user]);
  if (c.env?.length)
    fields.push([
      'Env',
      c.env.map((e) => (e.fromSecret !== undefined ? `${e.name} (from secret ${e.fromSecret})` : `${e.name}=${e.value ?? ''}`)),
    ]);
  if (c.ports?.length) fields.push(['Ports', c.ports.join(', ')]);
  if (c.volumes?.length) fields.push(['Volumes', c.volumes]);
  if (c.devices?.length)
    fields.push(['Devices', c.devices.map((d) => [d.hostPath, d.containerPath ?? d.hostPath, d.permissions].filter(Boolean).join(':'))]);
  if (c.tmpfs?.length) fields.push(['Tmpfs', c.tmpfs.join(', ')]);
  if (c.shmSize) fields.push(['Shm Size', c.shmSize]);
  if (c.gpus !== undefined) fields.push(['GPUs', String(c.gpus)]);
  if (c.restartPolicy)
    fields.push([
      'Restart',
      c.restartPolicy.maximumRetryCount !== undefined
        ? `${c.restartPolicy.name} (max ${c.restartPolicy.maximumRetryCount})`
        : c.restartPolicy.name,
    ]);
  if (c.resources) {
    const limits = [
      c.resources.memory ? `memory ${c.resources.memory}` : '',
      c.resources.cpus !== undefined ? `cpus ${c.resources.cpus}` : '',
    ];
    fields.push(['Resources', limits.filter(Boolean).join(', ') || '<none>']);
  }
  if (c.privileged) fields.push(['Privileged', 'yes']);
  if (c.capAdd?.length) fields.push(['Cap Add', c.capAdd.join(', ')]);
  if (c.capDrop?.length) fields.push(['Cap Drop', c.capDrop.join(', ')]);
  if (c.networkMode) fields.push(['Network', c.networkMode]);
  if (c.networkAliases?.length) fields.push(['Network Aliases', c.networkAliases.join(', ')]);
  if (c.dependsOn)
    fields.push([
      'Depends On',
      dependenciesOf(c)
        .map(([name, condition]) => `${name} (${condition})`)
        .join(', '),
    ]);
  if (c.labels && Object.keys(c.labels).length > 0) fields.push(['Labels', Object.entries(c.labels).map(([k, v]) => `${k}=${v}`)]);
  if (c.healthcheck) fields.push(['Healthcheck', describeHealthcheck(c.healthcheck)]);
  if (c.auth)
    fields.push([
      'Registry Auth',
      `${c.auth.username} (${c.auth.fromSecret !== undefined ? `password from secret ${c.auth.fromSecret}` : 'password in spec'})`,
    ]);
  if (c.secrets?.length) fields.push(['Secret Files', c.secrets.map((s) => `${secretFilePath(s)} (from secret ${s.name})`)]);
  return fields;
}

function describeHealthcheck(h: NonNullable<ContainerSpec['healthcheck']>): string {
  const probe =
    h.http !== undefined ? `http ${h.http}` : h.tcp !== undefined ? `tcp ${h.tcp}` : h.exec ? `exec ${h.exec.join(' ')}` : '<none>';
  const timing = [
    h.interval ? `every ${h.interval}` : '',
    h.timeout ? `timeout ${h.timeout}` : '',
    h.retries !== undefined ? `retries ${h.retries}` : '',
    h.startPeriod ? `start period ${h.startPeriod}` : '',
  ].filter(Boolean);
  return timing.length > 0 ? `${probe} (${timing.join(', ')})` : probe;
}
