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
import { loadYaml, yaml } from '../yaml.js';

export interface Document {
  /** How the document is named in messages: `app.yaml`, or `app.yaml (document 2)`. */
  source: string;
  value: unknown;
  /** Set when the document could not be parsed. */
  error?: UsageError;
}

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

/** A file's text, or stdin's for `-`; a file that cannot be read is a UsageError naming it. */
export async function readSource(io: CliIO, file: string): Promise<string> {
  if (file === '-') return io.readStdin();
  try {
    return await io.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new UsageError(`${file}: ${reason}`);
  }
}

/** A document with nothing in it (or only comments) parses as a null scalar. */
function isEmpty(contents: unknown): boolean {
  return contents === null || (yaml().isScalar(contents) && contents.value === null);
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

/**
 * YAML or JSON (JSON is YAML 1.2), one or more documents. Empty documents —
 * a leading `---`, a trailing one, a file of comments — are skipped, as kubectl does.
 * `kind` names what a file without any was expected to hold.
 */
export function parseDocuments(file: string, text: string, kind = 'app spec'): Document[] {
  const name = file === '-' ? '<stdin>' : file;
  const nonEmpty = yaml()
    .parseAllDocuments(text, { prettyErrors: true })
    .filter((doc) => doc.errors.length > 0 || !isEmpty(doc.contents));
  if (nonEmpty.length === 0) return [{ source: name, value: undefined, error: new UsageError(`${name}: no ${kind} found`) }];
  return nonEmpty.map((doc, i) => {
    const source = nonEmpty.length === 1 ? name : `${name} (document ${i + 1})`;
    const [first] = doc.errors;
    if (first) {
      const lines = first.message.split('\n').filter((line) => line.trim() !== '');
      return { source, value: undefined, error: new UsageError(`${source}: not valid YAML or JSON`, lines) };
    }
    return { source, value: doc.toJS() };
  });
}
