/**
 * `flotilla rollout history APP` — every revision of an app, newest first,
 * with how each was made (kubectl's CHANGE-CAUSE: `apply` or `rollback to N`).
 * The current revision is marked `3*`. `-o json|yaml` prints the hub's body.
 * `--revision N` prints that revision's spec instead (kubectl's `rollout history --revision`),
 * as YAML that `apply -f` takes back.
 *
 * `flotilla rollout status APP [-w]` — the app's newest rollout: one progress
 * line per stage (canary, then the rest of the fleet), a line of what its devices
 * downloaded of the revision's images, and one line per device with whether it
 * holds them (a bar and rate while they download, ahead of its turn or not).
 * `-w` prints it again on every change until the rollout is complete or
 * aborted (exit 0), or it pauses because devices failed or a newer revision
 * replaces it (exit 1); see rollout-watch.ts. With `-o json` each change is one
 * JSON line.
 * `flotilla rollout pause|resume|abort APP` act on it.
 *
 * status, pause, resume and abort also take `agent/NAME`: the rollout of an
 * agent target (`flotilla agent upgrade`), through the `agent.rollout.*`
 * methods, shown the same way. `app/NAME` is the same as `NAME`.
 */
import { type Command, Option } from 'commander';
import type { AppRevision, RolloutStatus } from '../../shared/index.js';
import type { AppHistory, HubClient } from '../client.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { UsageError } from '../errors.js';
import { rolloutDownloadsLine, rolloutImagesCell } from '../image-text.js';
import { parsePositiveInteger } from '../option-parsers.js';
import { cell, formatAge, formatTable } from '../output.js';
import { specYaml } from '../spec-yaml.js';

export function registerRollout(program: Command, io: CliIO): void {
  const rollout = program
    .command('rollout')
    .description("inspect an app's revisions and rollout, steer the rollout, or force a revision past update locks and windows");

  rollout
    .command('status')
    .argument('<target>', 'app name, or agent/NAME for an agent target')
    .option(
      '-w, --watch',
      'print again on every change until the rollout is complete or aborted (exit 0), or pauses because devices failed or gets a newer revision (exit 1)',
    )
    .description(
      "show the rollout of an app (or agent target): progress per stage, each device's state, and whether it holds the new revision's images",
    )
    .action(async (target: string, options: { watch?: boolean }, command: Command) => {
      const client = hubClient(command, io);
      const subject = parseRolloutTarget(target);
      const format = globalOptions(command).output;
      if (options.watch) {
        const { watchRollout } = await import('./rollout-watch.js');
        await watchRollout(io, format, client, subject);
        return;
      }
      const now = await rolloutCall(client, 'status', subject);
      render(io, format, now, () => rolloutText(now));
    });

  for (const [action, description] of [
    ['pause', 'stop starting devices on the new revision (devices already updating carry on)'],
    ['resume', 'continue a paused rollout with the next devices'],
    ['abort', 'send every device back to the revision it ran before; the app keeps its revision in history'],
  ] as const) {
    rollout
      .command(action)
      .argument('<target>', 'app name, or agent/NAME for an agent target')
      .description(description)
      .action(async (target: string, _options: unknown, command: Command) => {
        const status = await rolloutCall(hubClient(command, io), action, parseRolloutTarget(target));
        render(
          io,
          globalOptions(command).output,
          status,
          () => `${rolloutSubject(status)} rollout of revision ${status.revision}: ${status.phase}\n`,
        );
      });
  }

  rollout
    .command('history')
    .argument('<app>', 'app name')
    .addOption(
      new Option('--revision <n>', "print that revision's whole spec as YAML (apply -f takes it back) instead of the list").argParser(
        parsePositiveInteger,
      ),
    )
    .description('list the revisions of an app, newest first; the current one is marked with *')
    .action(async (target: string, options: { revision?: number }, command: Command) => {
      const name = appOnly(target, 'history');
      const client = hubClient(command, io);
      if (options.revision !== undefined) {
        const revision = await client.call('apps.revision', { name, revision: options.revision });
        render(io, globalOptions(command).output, revision, () => revisionText(revision));
        return;
      }
      const history = await client.call('apps.history', { name });
      render(io, globalOptions(command).output, history, () => historyTable(history));
    });

  rollout
    .command('retry')
    .argument('<app>', 'app name')
    .description('try the current spec again as a new revision (devices never retry a revision that was rolled back)')
    .action(async (target: string, _options: unknown, command: Command) => {
      const name = appOnly(target, 'retry');
      const result = await hubClient(command, io).call('apps.retry', { name });
      render(
        io,
        globalOptions(command).output,
        result,
        () => `app/${result.name} revision ${result.revision} (retry of revision ${result.retryOf})\n`,
      );
    });

  rollout
    .command('force')
    .argument('<app>', 'app name')
    .description('swap in the current revision now, even on devices where the app holds its update lock or its window is closed')
    .action(async (target: string, _options: unknown, command: Command) => {
      const name = appOnly(target, 'force');
      const result = await hubClient(command, io).call('apps.force', { name });
      render(io, globalOptions(command).output, result, () => `app/${result.name} revision ${result.revision} forced\n`);
    });
}

/** What a rollout command acts on: an app's rollout, or an agent target's (`agent/NAME`). */
export interface RolloutTarget {
  kind: 'app' | 'agent';
  name: string;
}

/** `web`, `app/web` or `agent/site-lab`; anything else with a `/` is refused with the two forms. */
export function parseRolloutTarget(arg: string): RolloutTarget {
  const slash = arg.indexOf('/');
  if (slash < 0) return { kind: 'app', name: arg };
  const kind = arg.slice(0, slash);
  const name = arg.slice(slash + 1);
  if ((kind === 'app' || kind === 'agent') && name !== '') return { kind, name };
  throw new UsageError(`invalid rollout "${arg}": expected an app name (web or app/web) or an agent target (agent/NAME)`);
}

/** The app's or the agent target's method for `action`: one route per kind, the same answer. */
export function rolloutCall(
  client: HubClient,
  action: 'status' | 'pause' | 'resume' | 'abort',
  target: RolloutTarget,
): Promise<RolloutStatus> {
  const params = { name: target.name };
  return target.kind === 'agent' ? client.call(`agent.rollout.${action}`, params) : client.call(`rollouts.${action}`, params);
}

/** history, retry and force are about app revisions; an agent target has its own commands for them. */
function appOnly(arg: string, action: 'history' | 'retry' | 'force'): string {
  const target = parseRolloutTarget(arg);
  if (target.kind === 'app') return target.name;
  const instead = {
    history: "flotilla agent targets shows each target's version and revision",
    retry: `flotilla agent upgrade --name ${target.name} --version V --retry tries a rolled-back version again`,
    force: 'an agent upgrade has no update lock to force past',
  }[action];
  throw new UsageError(`rollout ${action} is for apps, not agent targets: ${instead}`);
}

/** `app/web`; an agent target's rollout names itself `agent/site-lab` already. */
export function rolloutSubject(status: Pick<RolloutStatus, 'app'>): string {
  return status.app.startsWith('agent/') ? status.app : `app/${status.app}`;
}

export function historyTable(history: AppHistory, now: number = Date.now()): string {
  return formatTable(
    ['REVISION', 'CREATED', 'IMAGES', 'CAUSE', 'SOURCE'],
    history.items.map((r) => [
      r.current ? `${r.revision}*` : String(r.revision),
      formatAge(r.createdAt, now),
      // Containers often share an image (a Compose app's services): each image once, first seen first.
      [...new Set(r.images)].join(','),
      // Revisions stored before causes were recorded have none; kubectl shows <none> too.
      r.cause ?? '<none>',
      // Where an apply's specs came from (`--source git:SHA`); none for a revision made by hand.
      r.source ?? '<none>',
    ]),
  );
}

/**
 * One revision as `rollout history --revision N` prints it: a comment line saying which revision it
 * is and how it was made, then the spec as it was applied, so the output is a file `apply -f` takes.
 */
export function revisionText(revision: AppRevision, now: number = Date.now()): string {
  const made = [revision.cause ?? 'cause not recorded', ...(revision.source !== undefined ? [revision.source] : [])].join(', ');
  const state = revision.current ? 'current' : 'not current';
  return `# app/${revision.name} revision ${revision.revision} (${made}), made ${formatAge(revision.createdAt, now)} ago, ${state}\n${specYaml(revision.spec)}`;
}

const BAR_WIDTH = 10;

/** `[####------] 2/5`: healthy devices of the stage. */
export function progressBar(done: number, total: number): string {
  const filled = total === 0 ? BAR_WIDTH : Math.round((BAR_WIDTH * done) / total);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${total}`;
}

/** A column of the rollout's device table: its header and each device's cell. */
type DeviceColumn = [header: string, cell: (device: RolloutStatus['devices'][number]) => string];

export function rolloutText(status: RolloutStatus, now: number = Date.now()): string {
  const stages = [
    ['canary', status.devices.filter((d) => d.canary)],
    ['fleet', status.devices.filter((d) => !d.canary)],
  ] as const;
  let out = `${rolloutSubject(status)} revision ${status.revision} (from ${status.previousRevision}): ${status.phase}\n`;
  if (status.reason) out += `reason: ${cell(status.reason)}\n`;
  for (const [stage, devices] of stages) {
    if (devices.length === 0) continue;
    const healthy = devices.filter((d) => d.state === 'healthy').length;
    const failed = devices.filter((d) => d.state === 'failed' || d.state === 'reverted').length;
    out += `${stage.padEnd(7)} ${progressBar(healthy, devices.length)}${failed > 0 ? ` (${failed} failed)` : ''}\n`;
  }
  if (status.downloads !== undefined) out += rolloutDownloadsLine(status.downloads, status.devices.length);
  // An agent target's rollout has no images (no `downloads`): its table has no IMAGES column.
  const columns: DeviceColumn[] = [
    ['DEVICE', (d) => d.id],
    ['STAGE', (d) => (d.canary ? 'canary' : 'fleet')],
    ['REVISION', (d) => String(d.revision)],
    ['STATE', (d) => d.state],
    ['SINCE', (d) => formatAge(d.since, now)],
    ...(status.downloads !== undefined ? [['IMAGES', (d) => rolloutImagesCell(d.images, now)] satisfies DeviceColumn] : []),
    ['MESSAGE', (d) => d.message ?? ''],
  ];
  out += formatTable(
    columns.map(([header]) => header),
    status.devices.map((d) => columns.map(([, value]) => value(d))),
  );
  return out;
}
