/**
 * `flotilla apply -f FILE` — every document of every file is validated
 * locally first; nothing is sent unless all of them are valid, so a typo in
 * the third app of a file never leaves the first two applied alone.
 * Documents are then applied in order; the first hub error stops the run.
 */
import type { Command } from 'commander';
// Not through shared/index.js, which loads every schema and the signing code: `apply` checks one.
import { validateAppSpec } from '../../shared/app-spec.js';
import type { AppSpec } from '../../shared/schemas/spec.js';
import { formatIssue } from '../../shared/validate.js';
import type { ApplyResult } from '../client.js';
import { type CliIO, globalOptions, hubClient } from '../context.js';
import { CliErrors, UsageError } from '../errors.js';
import { formatStructured } from '../output.js';
import { parseDocuments, readSource } from '../spec-documents.js';
import { loadYaml } from '../yaml.js';

export function registerApply(program: Command, io: CliIO): void {
  program
    .command('apply')
    .description('create or update apps from YAML or JSON specs ("-" reads stdin; "---" separates several apps in one file)')
    .requiredOption('-f, --filename <file>', 'spec file, or - for stdin (repeatable)', collect)
    .action(async (options: { filename: string[] }, command: Command) => {
      const specs = await loadSpecs(io, options.filename);
      const { output } = globalOptions(command);
      const client = hubClient(command, io);
      const results: ApplyResult[] = [];
      for (const spec of specs) {
        const result = await client.call('apps.apply', { spec });
        results.push(result);
        if (output === 'table')
          io.stdout(`app/${result.name} ${result.changed ? 'configured' : 'unchanged'} (revision ${result.revision})\n`);
      }
      // For programs: one response body as the hub sent it, or several as `{items}`, like the hub's lists.
      if (output !== 'table') io.stdout(formatStructured(results.length === 1 ? results[0] : { items: results }, output));
    });
}

/** No default: a default would satisfy `requiredOption`, and `apply` without `-f` must be a usage error. */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Reads, parses and validates everything; throws every problem found at once. */
export async function loadSpecs(io: CliIO, files: readonly string[]): Promise<AppSpec[]> {
  const specs: AppSpec[] = [];
  const problems: UsageError[] = [];
  await loadYaml(); // parseDocuments then finds it loaded
  for (const file of files) {
    for (const doc of parseDocuments(file, await readSource(io, file))) {
      if (doc.error) {
        problems.push(doc.error);
        continue;
      }
      const result = validateAppSpec(doc.value);
      if (result.ok) specs.push(result.value);
      else problems.push(new UsageError(`${doc.source}: invalid app spec`, result.issues.map(formatIssue)));
    }
  }
  const [first, ...rest] = problems;
  if (first) throw rest.length === 0 ? first : new CliErrors([first, ...rest]);
  return specs;
}
