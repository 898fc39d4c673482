/**
 * `flotilla rollback APP [--to-revision N]` — kubectl's `rollout undo`: the
 * hub makes a new revision carrying the spec of revision N (by default the
 * one before the current), and devices converge to it like to any apply.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { RollbackResult } from '../client.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';

export function registerRollback(program: Command, io: CliIO): void {
  program
    .command('rollback')
    .argument('<app>', 'app name')
    .option('--to-revision <n>', 'the revision whose spec to restore (default: the one before the current)', parseRevision)
    .description("roll an app back to an earlier revision's spec; this creates a new revision (see `rollout history`)")
    .action(async (name: string, options: { toRevision?: number }, command: Command) => {
      // Without --to-revision the hub rolls back to the revision before the current one.
      const { toRevision } = options;
      const result = await hubClient(command, io).call('apps.rollback', toRevision === undefined ? { name } : { name, toRevision });
      render(io, globalOptions(command).output, result, () => rollbackMessage(result));
    });
}

/** A revision number as typed: 1, 2, 3…; anything else is a usage error (exit 2) before the hub is asked. */
export function parseRevision(value: string): number {
  const n = Number(value);
  if (!/^[1-9][0-9]*$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('must be a revision number: 1, 2, 3…');
  }
  return n;
}

export function rollbackMessage(result: RollbackResult): string {
  return result.changed
    ? `app/${result.name} rolled back to revision ${result.rolledBackTo} (now revision ${result.revision})\n`
    : `app/${result.name} unchanged (revision ${result.revision} is already the spec of revision ${result.rolledBackTo})\n`;
}
