/**
 * `flotilla job cancel NAME` and `flotilla job delete NAME` (docs/jobs.md): steering a
 * job once it is made. `flotilla run` makes one; `get jobs` and `describe job` show them.
 *
 * Cancel drops at once the queued executions no device has yet; running ones are stopped
 * on their devices, which then report them `canceled`, and queued ones a device already
 * has are not started there: the line says how many of each.
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
      const client = hubClient(command, io);
      const format = globalOptions(command).output;
      // The hub's answer does not say whether it canceled the job first: how it stood just before does.
      const before = format === 'table' ? await client.call('jobs.get', { name }) : undefined;
      const result = await client.call('jobs.delete', { name });
      render(io, format, result, () => deletedText(result.name, before));
    });
}

/**
 * `job/diag deleted`, or for a job that was still active, that it was canceled first and
 * what that stopped: `job/diag canceled, then deleted: 1 running is being stopped on its
 * device, 2 queued will not start`. Its executions leave their devices' desired states,
 * so a device stops what it runs of it and drops what it has not started.
 */
export function deletedText(name: string, before: Pick<JobDetail, 'phase' | 'counts'> | undefined): string {
  if (before?.phase !== 'active') return `job/${name} deleted\n`;
  const { running, queued } = before.counts;
  const parts: string[] = [];
  if (running > 0) {
    parts.push(running === 1 ? '1 running is being stopped on its device' : `${running} running are being stopped on their devices`);
  }
  if (queued > 0) parts.push(`${queued} queued will not start`);
  return `job/${name} canceled, then deleted${parts.length > 0 ? `: ${parts.join(', ')}` : ''}\n`;
}

/**
 * What a cancel did, from the executions the hub answered with:
 * `job/diag canceled: 2 succeeded; 3 dropped before they started; 1 running is being stopped on its device`.
 * Dropped: queued ones the hub canceled before any device had them (or, asked again, ones
 * a device dropped unstarted). Being stopped: running ones, which their devices stop and
 * then report `canceled`. Told not to start: queued ones already in their devices'
 * desired states, which each device drops when it reads the cancel (an offline one when
 * it reconnects). For a job that had already ended, that nothing changed.
 */
export function canceledText(job: Pick<JobDetail, 'name' | 'phase' | 'counts' | 'executions'>): string {
  const { counts } = job;
  if (job.phase !== 'canceled') {
    const final = (['succeeded', 'failed', 'timed-out', 'canceled', 'expired'] as const)
      .filter((state) => counts[state] > 0)
      .map((state) => `${counts[state]} ${state}`);
    return `job/${job.name} was already ${job.phase}: nothing to cancel (${final.length > 0 ? final.join(', ') : 'nothing had finished'})\n`;
  }
  const dropped = job.executions.filter((e) => e.state === 'canceled' && e.startedAt === undefined).length;
  const stopped = counts.canceled - dropped;
  const ended = (['succeeded', 'failed', 'timed-out', 'expired'] as const)
    .filter((state) => counts[state] > 0)
    .map((state) => `${counts[state]} ${state}`);
  if (stopped > 0) ended.push(`${stopped} canceled`);
  const parts = ended.length > 0 ? [ended.join(', ')] : [];
  if (dropped > 0) parts.push(`${dropped} dropped before ${dropped === 1 ? 'it' : 'they'} started`);
  if (counts.running > 0) {
    parts.push(
      counts.running === 1 ? '1 running is being stopped on its device' : `${counts.running} running are being stopped on their devices`,
    );
  }
  if (counts.queued > 0) {
    parts.push(
      counts.queued === 1
        ? '1 queued is told not to start on its device'
        : `${counts.queued} queued are told not to start on their devices`,
    );
  }
  return `job/${job.name} canceled: ${parts.length > 0 ? parts.join('; ') : 'it had no executions'}\n`;
}
