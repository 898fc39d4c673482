/**
 * `flotilla apply -f FILE|FOLDER …` — every spec of every file and folder goes
 * to the hub in ONE `apps.applyAll` request, which stores all of them or none:
 * a typo in one file never leaves the others applied alone. Every document is
 * validated here first (spec-files.ts), so a bad spec is reported, with its
 * file, document and field, before anything is sent.
 *
 * `--dry-run` asks the hub for its plan (`apps.plan`, the apply's dry run,
 * which a viewer key may ask too): everything but storing. The answer says
 * what each app would become, the devices it would reach and the secrets it
 * uses. `--prune --prune-scope S` deletes the apps of scope S the specs no
 * longer name. It is two requests: the plan first, whose list of apps to
 * delete is printed, then the apply with `expectPruned` set to exactly that
 * list, so the hub refuses (and stores nothing) if the list changed in
 * between: nothing is ever deleted that was not listed first.
 *
 * A Compose file is applied as the app spec it converts to (cli/compose/):
 * `--name` and `--selector`/`--device` give what Compose cannot say, and what
 * the conversion leaves to the operator (a secret to set) is printed to
 * stderr as `note:` lines.
 *
 * `-o json|yaml` prints the hub's answer (the apply's, not the dry run's).
 */
import type { Command } from 'commander';
import type { AppliedApp, ApplyAllResult, PrunedApp } from '../../shared/api/results.js';
import { HubError } from '../client.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import type { OutputFormat } from '../output.js';
import {
  addComposeOptions,
  type ComposeFlags,
  checkPrune,
  composeOptionsOf,
  filenameOption,
  scopeOption,
  sourceOf,
  sourceOption,
} from '../spec-options.js';

interface ApplyOptions extends ComposeFlags {
  filename: string[];
  dryRun?: boolean;
  prune?: boolean;
  pruneScope?: string;
  source?: string;
}

export function registerApply(program: Command, io: CliIO): void {
  const apply = program
    .command('apply')
    .description(
      'create or update apps from YAML or JSON specs, files or folders, as one unit: if any spec is refused, nothing is applied ("---" separates several apps in one file)',
    )
    .addOption(filenameOption('applies'))
    .option('--dry-run', 'check everything and show what would happen (new revisions, devices reached, secrets used), storing nothing')
    .addOption(
      scopeOption(
        'record this prune scope on every app applied (an app without one joins it; an app recorded with another scope is refused)',
      ),
    )
    .option(
      '--prune',
      'also delete the apps recorded with --prune-scope that the specs no longer name; they are listed before anything is deleted (with --dry-run, only listed)',
    )
    .addOption(sourceOption());
  addComposeOptions(apply)
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  flotilla apply -f web.yaml',
        '  flotilla apply -f apps/ --dry-run',
        '  flotilla apply -f apps/ --prune --prune-scope fleet-config --source git:$(git rev-parse HEAD)',
        '  flotilla apply -f docker-compose.yml --name shop --selector site=lab',
      ].join('\n'),
    )
    .action(async (options: ApplyOptions, command: Command) => {
      checkPrune(options);
      const source = sourceOf(options.source);
      const { checkRequestSize, loadSpecSet, locateHubIssues } = await import('../spec-files.js');
      const set = await loadSpecSet(io, options.filename, composeOptionsOf(options));
      for (const note of set.notes) io.stderr(`note: ${note}\n`);
      const { output } = globalOptions(command);
      const client = hubClient(command, io);
      const request = {
        specs: set.specs,
        ...(options.pruneScope !== undefined ? { scope: options.pruneScope } : {}),
        ...(source !== undefined ? { source } : {}),
      };
      checkRequestSize(request);
      let result: ApplyAllResult;
      try {
        const prune = options.prune ? { prune: true } : {};
        if (options.dryRun) {
          result = await client.call('apps.plan', { ...request, ...prune });
        } else if (options.prune) {
          const plan = await client.call('apps.plan', { ...request, prune: true });
          announcePrune(io, output, plan.pruned, options.pruneScope!);
          try {
            result = await client.call('apps.applyAll', { ...request, prune: true, expectPruned: plan.pruned.map((app) => app.name) });
          } catch (err) {
            // The hub answered: the set is one transaction, so the apps just announced are all still there.
            if (err instanceof HubError && plan.pruned.length > 0) io.stderr('the hub refused the set: nothing was applied or pruned\n');
            throw err;
          }
        } else {
          result = await client.call('apps.applyAll', request);
        }
      } catch (err) {
        throw locateHubIssues(err, set);
      }
      render(io, output, result, () => appliedText(result));
    });
}

/**
 * The apps the prune will delete, before it does: on stdout with the table, on
 * stderr with `-o json|yaml`, whose stdout carries the hub's answer alone.
 */
function announcePrune(io: CliIO, output: OutputFormat, pruned: readonly PrunedApp[], scope: string): void {
  if (pruned.length === 0) return;
  const names = pruned.map((app) => `app/${app.name}`).join(', ');
  const line = `pruning ${pruned.length === 1 ? '1 app' : `${pruned.length} apps`} of scope ${scope} that the specs no longer name: ${names}\n`;
  if (output === 'table') io.stdout(line);
  else io.stderr(line);
}

/** How many device ids a dry run prints per app before "and N more". */
const DEVICE_IDS_SHOWN = 5;

/**
 * kubectl's lines: `app/web created (revision 1)`, `configured`, `unchanged`, `app/old pruned`.
 * A dry run marks each line and adds what the apply would reach: devices, secrets, a new scope.
 */
export function appliedText(result: ApplyAllResult): string {
  const mark = result.dryRun ? ' (dry run)' : '';
  let out = '';
  for (const app of result.items) {
    const joined = joinedScope(app);
    if (result.dryRun) out += `app/${app.name} ${app.action} (revision ${app.revision})${mark}\n${dryRunDetails(app)}`;
    else out += `app/${app.name} ${app.action} (revision ${app.revision})${joined ? ` (joins scope ${joined})` : ''}\n`;
  }
  for (const app of result.pruned) out += `app/${app.name} pruned${mark}\n`;
  return out;
}

function dryRunDetails(app: AppliedApp): string {
  const { count, ids } = app.devices;
  const shown = ids.slice(0, DEVICE_IDS_SHOWN);
  const more = count - shown.length;
  let out = `  devices: ${count === 0 ? 'none selected now' : `${count} (${shown.join(', ')}${more > 0 ? `, and ${more} more` : ''})`}\n`;
  if (app.secrets.length > 0) out += `  secrets: ${app.secrets.join(', ')}\n`;
  const joined = joinedScope(app);
  if (joined) out += `  scope: joins ${joined}\n`;
  return out;
}

/** The scope an app the hub already had joins with this apply (a new app is in its scope from the start). */
export function joinedScope(app: AppliedApp): string | undefined {
  return app.action !== 'created' && app.previousScope === null && app.scope !== null ? app.scope : undefined;
}
