/**
 * `flotilla job cancel NAME` and `flotilla job delete NAME` (docs/jobs.md): steering a
 * job once it is made. `flotilla run` makes one; `get jobs` and `describe job` show them.
 *
 * Cancel drops the queued executions at once; running ones are stopped on their devices,
 * which then report them `canceled`, so the line says how many are still stopping.
 * Canceling a job that has ended changes nothing, and the line says how it ended (exit 0:
 * what was asked for, a job that no longer runs, holds; the hub's answer does not tell a
 * second cancel from the first, so a canceled job reads the same both times). Delete
 * cancels first, then forgets the job; its logs and events stay.
 */
import type { Command } from 'commander';
import type { JobDetail } from '../../shared/index.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';

export function registerJob(program: Command, io: CliIO): void {
  const job = program.command('job').description('cancel or delete a job (flotilla run makes one)');

  job
    .command('cancel')
    .argument('<name>', 'job name')
    .description('cancel a job: queued executions are dropped, running ones stopped on their devices')
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).call('jobs.cancel', { name });
      render(io, globalOptions(command).output, result, () => canceledText(result));
    });

  registerJobDelete(job.command('delete'), io);
}

/** `job delete NAME`, and `delete job NAME` for kubectl's habit (delete.ts). */
export function registerJobDelete(sub: Command, io: CliIO): void {
  sub
    .argument('<name>', 'job name')
    .description("delete a job (canceling it first) and its executions' records; its logs and events stay")
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).call('jobs.delete', { name });
      render(io, globalOptions(command).output, result, () => `job/${result.name} deleted\n`);
    });
}

/**
 * `job/diag canceled: 2 succeeded, 3 canceled; 1 running is being stopped on its device`,
 * or, for a job that had already ended, that nothing changed.
 */
export function canceledText(job: Pick<JobDetail, 'name' | 'phase' | 'counts'>): string {
  const { counts } = job;
  const parts = (['succeeded', 'failed', 'timed-out', 'canceled', 'expired'] as const)
    .filter((state) => counts[state] > 0)
    .map((state) => `${counts[state]} ${state}`);
  const done = parts.length > 0 ? parts.join(', ') : 'nothing had finished';
  if (job.phase !== 'canceled') return `job/${job.name} was already ${job.phase}: nothing to cancel (${done})\n`;
  const stopping = counts.running + counts.queued;
  const still =
    stopping === 0
      ? ''
      : stopping === 1
        ? '; 1 execution is being stopped on its device'
        : `; ${stopping} executions are being stopped on their devices`;
  return `job/${job.name} canceled: ${done}${still}\n`;
}
