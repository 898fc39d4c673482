/**
 * `flotilla diff -f FILE|FOLDER … [--prune --prune-scope NAME]` — what
 * `apply` with the same options would do, from one `apps.plan`: the hub runs
 * the very checks and plan of the apply and stores nothing. A viewer key is
 * enough, so a pull request's job holds no key that could deploy.
 * Each app is listed in the set's order as created, changed (with a unified
 * diff of its spec) or unchanged; with `--prune`, the apps that would be
 * deleted follow (spec-diff.ts).
 *
 * Exit codes, as `kubectl diff`, so CI can gate on them: 0 nothing would
 * change, 1 something would (EXIT_DIFF_CHANGES), 2 or more on any error and
 * never 1: an invalid spec 2, not found 3, refused credentials 4, and 5
 * (EXIT_DIFF_FAILED) for what exits 1 elsewhere: a hub that cannot be reached,
 * a set the hub refuses otherwise (an app of another prune scope), a hub failure.
 *
 * `-o json|yaml` prints the hub's dry-run answer instead; the exit code is the same.
 */
import type { Command } from 'commander';
import type { ApplyAllResult } from '../../shared/api/results.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { CliError, CommandExit, EXIT_DIFF_CHANGES, EXIT_DIFF_FAILED, EXIT_HUB_ERROR } from '../errors.js';
import { addComposeOptions, type ComposeFlags, checkPrune, composeOptionsOf, filenameOption, scopeOption } from '../spec-options.js';

interface DiffOptions extends ComposeFlags {
  filename: string[];
  prune?: boolean;
  pruneScope?: string;
}

export function registerDiff(program: Command, io: CliIO): void {
  const diffCommand = program
    .command('diff')
    .description(
      'show what apply -f would change on the hub, storing nothing: each app created, changed (with a unified diff of its spec) or unchanged; exit 0 when nothing would change, 1 when something would, 2 or more on an error',
    )
    .addOption(filenameOption('compares'))
    .addOption(scopeOption('compare as apply --prune-scope NAME would apply: an app recorded with another scope is an error'))
    .option('--prune', 'also show the apps recorded with --prune-scope that the specs no longer name: apply --prune would delete them');
  addComposeOptions(diffCommand)
    .addHelpText(
      'after',
      [
        '',
        'Exit codes: 0 no change, 1 changes, 2 invalid input, 3 not found, 4 refused credentials,',
        '5 any other error (hub unreachable, an app of another prune scope, a hub failure).',
        '',
        'Examples:',
        '  flotilla diff -f apps/',
        '  flotilla diff -f apps/ --prune --prune-scope fleet-config',
      ].join('\n'),
    )
    .action(async (options: DiffOptions, command: Command) => {
      let changed: boolean;
      try {
        changed = await diff(io, options, command);
      } catch (err) {
        throw asDiffError(err);
      }
      if (changed) throw new CommandExit(EXIT_DIFF_CHANGES);
    });
}

/** Prints the difference; whether there is any. */
async function diff(io: CliIO, options: DiffOptions, command: Command): Promise<boolean> {
  checkPrune(options);
  const { checkRequestSize, loadSpecSet, locateHubIssues } = await import('../spec-files.js');
  const set = await loadSpecSet(io, options.filename, composeOptionsOf(options));
  const request = {
    specs: set.specs,
    ...(options.pruneScope !== undefined ? { scope: options.pruneScope } : {}),
    ...(options.prune ? { prune: true } : {}),
  };
  checkRequestSize(request);
  const client = hubClient(command, io);
  let result: ApplyAllResult;
  try {
    result = await client.call('apps.plan', request);
  } catch (err) {
    throw locateHubIssues(err, set);
  }
  const { diffText, hasChanges } = await import('../spec-diff.js');
  render(io, globalOptions(command).output, result, () => diffText(result, set));
  return hasChanges(result);
}

/** An error of `diff` with its exit code above 1, where 1 means "changes". */
function asDiffError(err: unknown): unknown {
  if (err instanceof CliError) return err.exitCode === EXIT_HUB_ERROR ? new DiffFailed(err) : err;
  return new CliError(err instanceof Error ? err.message : String(err), EXIT_DIFF_FAILED);
}

/** The same error, printed the same way, with EXIT_DIFF_FAILED. */
class DiffFailed extends CliError {
  constructor(readonly original: CliError) {
    super(original.message, EXIT_DIFF_FAILED, original.lines);
    this.name = 'DiffFailed';
  }

  override format(): string {
    return this.original.format();
  }
}
