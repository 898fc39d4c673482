/**
 * `flotilla convert FILE… [--name APP] [--selector k=v …] [--device ID …] [-o yaml|json]`
 * — prints the app spec a Compose file converts to (cli/compose/), the very
 * spec `apply -f FILE` with the same options would send; nothing is sent
 * anywhere. FILE may be `-` (stdin) or a folder, read as `apply -f` reads it.
 *
 * Output: YAML documents separated by `---` (the default, and `-o yaml`), or
 * with `-o json` the spec as JSON (one per line of documents, as `export`
 * writes them). What the conversion leaves to the operator (a secret to set,
 * a network to create) goes to stderr as `note:` lines, so stdout is a spec
 * file `apply -f` takes as it is.
 */
import type { Command } from 'commander';
import { type CliIO, globalOptions } from '../context.js';
import { addComposeOptions, type ComposeFlags, composeOptionsOf } from '../spec-options.js';

export function registerConvert(program: Command, io: CliIO): void {
  const convert = program
    .command('convert')
    .argument('<files...>', 'Compose files (docker-compose.yml), folders of them, or - for stdin')
    .description(
      'print the Flotilla app spec a Compose file converts to, sending nothing: every field it cannot map is named in one error',
    );
  addComposeOptions(convert)
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  flotilla convert docker-compose.yml --name shop --selector site=lab > shop.yaml',
        "  flotilla convert docker-compose.yml --selector site=lab    # named by the file's x-flotilla: {name: shop}",
        '  flotilla convert docker-compose.yml --name shop --device gw-0042 -o json',
        '',
        'Override files (docker-compose.override.yml) are not merged: merge what the fleet needs of one into its file.',
      ].join('\n'),
    )
    .action(async (files: string[], options: ComposeFlags, command: Command) => {
      const [{ loadSpecSet }, { specYaml }] = await Promise.all([import('../spec-files.js'), import('../spec-yaml.js')]);
      const set = await loadSpecSet(io, files, composeOptionsOf(options));
      for (const note of set.notes) io.stderr(`note: ${note}\n`);
      const json = globalOptions(command).output === 'json';
      io.stdout(set.specs.map((spec) => (json ? `${JSON.stringify(spec, null, 2)}\n` : specYaml(spec))).join(json ? '' : '---\n'));
    });
}
