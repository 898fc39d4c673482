/**
 * `flotilla delete app NAME` — the hub removes it from every device's desired state.
 * `flotilla delete job NAME` — the same as `flotilla job delete NAME` (job.ts).
 */
import type { Command } from 'commander';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { registerJobDelete } from './job.js';

export function registerDelete(program: Command, io: CliIO): void {
  const del = program.command('delete').description('delete an app or a job');

  del
    .command('app')
    .alias('apps')
    .argument('<name>', 'app name')
    .description('delete an app; agents stop and remove its containers')
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).call('apps.delete', { name });
      render(io, globalOptions(command).output, result, () => `app/${result.name} deleted\n`);
    });

  registerJobDelete(del.command('job').alias('jobs'), io);
}
