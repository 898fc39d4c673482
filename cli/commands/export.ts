/**
 * `flotilla export [APP…] [--dir OUT] [--prune-scope NAME] [--format flotilla|compose]`
 * — apps written back as the specs that were applied (`apps.export`: no
 * hub-made fields), so a fleet made by hand can move into a folder kept in git.
 *
 * On stdout the specs are documents separated by `---` (YAML, or JSON with
 * `-o json`), which `apply -f -` reads back; export has no table. With
 * `--dir OUT` each app is written to `OUT/NAME.yaml` (or `.json`): OUT is
 * made if missing, a file of that name is overwritten, and no other file is
 * touched, so `export --dir` into a checkout never deletes anything.
 *
 * `--format compose` writes each app as a Compose file instead
 * (cli/compose/to-compose.ts), for `docker-compose up` on a bench board; with
 * `--dir OUT` as `OUT/NAME/docker-compose.yml`, a folder per app, because
 * docker-compose names its project after the folder and reads `./secrets/`
 * beside the file: two apps in one folder would be one project to it.
 *
 * Invariant: `export --dir X` then `apply -f X` is unchanged for every app
 * (specYaml reads back as the spec it was written from).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import type { ExportedApp } from '../../shared/api/results.js';
import { isName } from '../../shared/ids.js';
import { type CliIO, globalOptions, hubClient } from '../context.js';
import { CliError, EXIT_HUB_ERROR, EXIT_NOT_FOUND, UsageError } from '../errors.js';
import { scopeOption } from '../spec-options.js';

const FORMATS = ['flotilla', 'compose'] as const;

interface ExportOptions {
  dir?: string;
  pruneScope?: string;
  format: (typeof FORMATS)[number];
}

export function registerExport(program: Command, io: CliIO): void {
  program
    .command('export')
    .argument('[apps...]', 'the apps to export (default: every app, or every app of --prune-scope)')
    .description(
      'write apps back as the specs that were applied: YAML documents separated by "---" on stdout (JSON with -o json), or one file per app with --dir',
    )
    .option(
      '--dir <folder>',
      'write each app to FOLDER/NAME.yaml (NAME.json with -o json), making FOLDER if needed; other files are left alone',
    )
    .addOption(scopeOption('only the apps recorded with this prune scope'))
    .addOption(
      new Option(
        '--format <format>',
        'flotilla: the app specs; compose: Compose files for docker-compose (with --dir: FOLDER/NAME/docker-compose.yml)',
      )
        .choices(FORMATS)
        .default('flotilla'),
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  flotilla export web > web.yaml',
        '  flotilla export --dir apps/ && flotilla apply -f apps/ --prune --prune-scope fleet-config',
        '  flotilla export shop --format compose --dir bench/ && cd bench/shop && docker-compose up -d',
      ].join('\n'),
    )
    .action(async (names: string[], options: ExportOptions, command: Command) => {
      const json = globalOptions(command).output === 'json';
      const compose = options.format === 'compose';
      if (compose && json) throw new UsageError('a Compose file is YAML: leave out -o json with --format compose');
      const { items } = await hubClient(command, io).call('apps.export', {
        ...(options.pruneScope !== undefined ? { scope: options.pruneScope } : {}),
      });
      const apps = chosen(items, names, options.pruneScope);
      let text: (app: ExportedApp) => string;
      if (json) {
        text = (app) => `${JSON.stringify(app.spec, null, 2)}\n`;
      } else if (compose) {
        const [{ loadYaml }, { composeYaml }] = await Promise.all([import('../yaml.js'), import('../compose/to-compose.js')]);
        await loadYaml();
        text = (app) => composeYaml(app.spec, app.revision);
      } else {
        const [{ loadYaml }, { specYaml }] = await Promise.all([import('../yaml.js'), import('../spec-yaml.js')]);
        await loadYaml();
        text = (app) => specYaml(app.spec);
      }
      if (options.dir === undefined) {
        io.stdout(apps.map(text).join('---\n'));
        return;
      }
      await mkdir(options.dir, { recursive: true });
      for (const app of apps) {
        // The name becomes a file name: only a DNS label, never a path, whatever the hub answered.
        if (!isName(app.name))
          throw new CliError(`the hub answered an app name that is not a DNS label: ${JSON.stringify(app.name)}`, EXIT_HUB_ERROR);
        let file: string;
        if (compose) {
          await mkdir(join(options.dir, app.name), { recursive: true });
          file = join(options.dir, app.name, 'docker-compose.yml');
        } else file = join(options.dir, `${app.name}.${json ? 'json' : 'yaml'}`);
        await writeFile(file, text(app));
        io.stdout(`app/${app.name} written to ${file} (revision ${app.revision})\n`);
      }
    });
}

/** The apps asked for, in the order asked (every app when none is named); any name the hub lacks is not found. */
function chosen(items: readonly ExportedApp[], names: readonly string[], scope: string | undefined): ExportedApp[] {
  if (names.length === 0) return [...items];
  const byName = new Map(items.map((app) => [app.name, app]));
  const wanted = [...new Set(names.map((name) => name.replace(/^app\//, '')))];
  const missing = wanted.filter((name) => !byName.has(name));
  if (missing.length > 0) {
    const where = scope === undefined ? '' : ` in scope ${scope}`;
    throw new CliError(`${missing.map((name) => `app "${name}"`).join(', ')} not found${where}`, EXIT_NOT_FOUND);
  }
  return wanted.map((name) => byName.get(name)!);
}
