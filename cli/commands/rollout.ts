/**
 * `flotilla rollout history APP` — every revision of an app, newest first,
 * with how each was made (kubectl's CHANGE-CAUSE: `apply` or `rollback to N`).
 * The current revision is marked `3*`. `-o json|yaml` prints the hub's body.
 *
 * `flotilla rollout status APP [-w]` — the app's newest rollout: one progress
 * line per stage (canary, then the rest of the fleet) and one line per device.
 * `-w` prints it again on every change until the rollout is complete or
 * aborted (or Ctrl-C); with `-o json` each change is one JSON line.
 * `flotilla rollout pause|resume|abort APP` act on it.
 */
import type { Command } from 'commander';
import type { RolloutStatus } from '../../shared/index.js';
import type { AppHistory } from '../client.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { cell, formatAge, formatTable } from '../output.js';

/** How often `rollout status -w` asks the hub. */
const WATCH_INTERVAL_MS = 1000;

export function registerRollout(program: Command, io: CliIO): void {
  const rollout = program
    .command('rollout')
    .description("inspect an app's revisions and rollout, steer the rollout, or force a revision past update locks");

  rollout
    .command('status')
    .argument('<app>', 'app name')
    .option('-w, --watch', 'print again on every change until the rollout is complete or aborted')
    .description("show the app's rollout: progress per stage and each device's state")
    .action(async (name: string, options: { watch?: boolean }, command: Command) => {
      const client = hubClient(command, io);
      const format = globalOptions(command).output;
      if (!options.watch) {
        const status = await client.call('rollouts.status', { name });
        render(io, format, status, () => rolloutText(status));
        return;
      }
      let last = '';
      for (;;) {
        const status = await client.call('rollouts.status', { name });
        const text = JSON.stringify(status);
        if (text !== last) {
          last = text;
          if (format === 'json') io.stdout(`${text}\n`);
          else render(io, format, status, () => `${rolloutText(status)}\n`);
        }
        if (status.phase === 'complete' || status.phase === 'aborted') return;
        await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
      }
    });

  for (const [action, description] of [
    ['pause', 'stop starting devices on the new revision (devices already updating carry on)'],
    ['resume', 'continue a paused rollout with the next devices'],
    ['abort', 'send every device back to the revision it ran before; the app keeps its revision in history'],
  ] as const) {
    rollout
      .command(action)
      .argument('<app>', 'app name')
      .description(description)
      .action(async (name: string, _options: unknown, command: Command) => {
        const status = await hubClient(command, io).call(`rollouts.${action}`, { name });
        render(
          io,
          globalOptions(command).output,
          status,
          () => `app/${status.app} rollout of revision ${status.revision}: ${status.phase}\n`,
        );
      });
  }

  rollout
    .command('history')
    .argument('<app>', 'app name')
    .description('list the revisions of an app, newest first; the current one is marked with *')
    .action(async (name: string, _options: unknown, command: Command) => {
      const history = await hubClient(command, io).call('apps.history', { name });
      render(io, globalOptions(command).output, history, () => historyTable(history));
    });

  rollout
    .command('retry')
    .argument('<app>', 'app name')
    .description('try the current spec again as a new revision (devices never retry a revision that was rolled back)')
    .action(async (name: string, _options: unknown, command: Command) => {
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
    .description('swap in the current revision now, even on devices where the app holds its update lock')
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).call('apps.force', { name });
      render(io, globalOptions(command).output, result, () => `app/${result.name} revision ${result.revision} forced\n`);
    });
}

export function historyTable(history: AppHistory, now: number = Date.now()): string {
  return formatTable(
    ['REVISION', 'CREATED', 'IMAGES', 'CAUSE'],
    history.items.map((r) => [
      r.current ? `${r.revision}*` : String(r.revision),
      formatAge(r.createdAt, now),
      r.images.join(','),
      // Revisions stored before causes were recorded have none; kubectl shows <none> too.
      r.cause ?? '<none>',
    ]),
  );
}

const BAR_WIDTH = 10;

/** `[####------] 2/5`: healthy devices of the stage. */
export function progressBar(done: number, total: number): string {
  const filled = total === 0 ? BAR_WIDTH : Math.round((BAR_WIDTH * done) / total);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${total}`;
}

export function rolloutText(status: RolloutStatus, now: number = Date.now()): string {
  const stages = [
    ['canary', status.devices.filter((d) => d.canary)],
    ['fleet', status.devices.filter((d) => !d.canary)],
  ] as const;
  let out = `app/${status.app} revision ${status.revision} (from ${status.previousRevision}): ${status.phase}\n`;
  if (status.reason) out += `reason: ${cell(status.reason)}\n`;
  for (const [stage, devices] of stages) {
    if (devices.length === 0) continue;
    const healthy = devices.filter((d) => d.state === 'healthy').length;
    const failed = devices.filter((d) => d.state === 'failed' || d.state === 'reverted').length;
    out += `${stage.padEnd(7)} ${progressBar(healthy, devices.length)}${failed > 0 ? ` (${failed} failed)` : ''}\n`;
  }
  out += formatTable(
    ['DEVICE', 'STAGE', 'REVISION', 'STATE', 'SINCE', 'MESSAGE'],
    status.devices.map((d) => [d.id, d.canary ? 'canary' : 'fleet', String(d.revision), d.state, formatAge(d.since, now), d.message ?? '']),
  );
  return out;
}
