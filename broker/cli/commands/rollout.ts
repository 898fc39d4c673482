/**
 * `flotilla rollout history APP` — every revision of an app, newest first,
 * with how each was made (kubectl's CHANGE-CAUSE: `apply` or `rollback to N`).
 * The current revision is marked `3*`. `-o json|yaml` prints the hub's body.
 */
import type { Command } from 'commander';
import type { AppHistory } from '../client.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { formatAge, formatTable } from '../output.js';

export function registerRollout(program: Command, io: CliIO): void {
  const rollout = program.command('rollout').description("inspect an app's revisions, or force one past update locks");

  rollout
    .command('history')
    .argument('<app>', 'app name')
    .description('list the revisions of an app, newest first; the current one is marked with *')
    .action(async (name: string, _options: unknown, command: Command) => {
      const history = await hubClient(command, io).appHistory(name);
      render(io, globalOptions(command).output, history, () => historyTable(history));
    });

  rollout
    .command('force')
    .argument('<app>', 'app name')
    .description('swap in the current revision now, even on devices where the app holds its update lock')
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).forceApp(name);
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
