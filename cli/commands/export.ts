/**
 * `flotilla export [APP…] [--dir OUT] [--prune-scope NAME | --unscoped] [--format flotilla|compose]`
 * — apps written back as the specs that were applied (`apps.export`: no
 * hub-made fields), so a fleet made by hand can move into a folder kept in git.
 *
 * On stdout the specs are documents separated by `---` (YAML, or JSON with
 * `-o json`), which `apply -f -` reads back; export has no table. With
 * `--dir OUT` each app is written to `OUT/NAME.yaml` (or `.json`): OUT is
 * made if missing, and no file but the ones written is touched, so
 * `export --dir` into a checkout never deletes anything.
 *
 * OUT may be the team's folder already: its specs are read first, as
 * `apply -f OUT` reads them (spec-files.ts), so that the folder still loads
 * afterwards, with every app named once:
 * - an app defined in a file of OUT that holds only it is written back into
 *   that file, whatever its name;
 * - an app defined in a file beside other apps, or in a Compose file (for
 *   `--format flotilla`; a spec file for `--format compose`), is not written,
 *   with a note naming the file: rewriting the file would lose the others'
 *   layout, and a second file would define the app twice;
 * - an app whose file name is taken by a file defining other apps is not
 *   written either, with a note.
 * A folder whose specs do not load is refused whole: there is no telling
 * which file defines which app.
 *
 * `--format compose` writes each app as a Compose file instead
 * (cli/compose/to-compose.ts), for `docker-compose up` on a bench board; with
 * `--dir OUT` as `OUT/NAME/docker-compose.yml`, a folder per app, because
 * docker-compose names its project after the folder and reads `./secrets/`
 * beside the file: two apps in one folder would be one project to it.
 *
 * Invariant: `export --dir X` then `apply -f X` is unchanged for every app
 * written (specYaml reads back as the spec it was written from).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Command, Option } from 'commander';
import type { ExportedApp } from '../../shared/api/results.js';
import { canonicalJson } from '../../shared/canonical-json.js';
import { isName } from '../../shared/ids.js';
import { type CliIO, globalOptions, hubClient } from '../context.js';
import { CliError, EXIT_HUB_ERROR, EXIT_NOT_FOUND, UsageError } from '../errors.js';
import type { LoadedSpecSet } from '../spec-files.js';
import { scopeOption } from '../spec-options.js';

const FORMATS = ['flotilla', 'compose'] as const;
type Format = (typeof FORMATS)[number];

interface ExportOptions {
  dir?: string;
  pruneScope?: string;
  unscoped?: boolean;
  format: Format;
}

export function registerExport(program: Command, io: CliIO): void {
  program
    .command('export')
    .argument('[apps...]', 'the apps to export (default: every app, or every app of --prune-scope or --unscoped)')
    .description(
      'write apps back as the specs that were applied: YAML documents separated by "---" on stdout (JSON with -o json), or one file per app with --dir',
    )
    .option(
      '--dir <folder>',
      'write each app to FOLDER/NAME.yaml (NAME.json with -o json), making FOLDER if needed; an app a file of FOLDER already defines alone is written back into that file, and one defined beside other apps is left as it is, with a note',
    )
    .addOption(scopeOption('only the apps recorded with this prune scope'))
    .option('--unscoped', 'only the apps recorded with no prune scope: those made by hand or by a plain apply')
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
        'A file written over loses its comments and layout: export into an empty folder, or commit first',
        'and look at git diff afterwards.',
        '',
        'Examples:',
        '  flotilla export web > web.yaml',
        '  flotilla export --unscoped --dir apps/ && flotilla diff -f apps/ --prune --prune-scope fleet-config',
        '  flotilla export shop --format compose --dir bench/ && cd bench/shop && docker-compose up -d',
      ].join('\n'),
    )
    .action(async (names: string[], options: ExportOptions, command: Command) => {
      const json = globalOptions(command).output === 'json';
      const compose = options.format === 'compose';
      if (compose && json) throw new UsageError('a Compose file is YAML: leave out -o json with --format compose');
      if (options.unscoped && options.pruneScope !== undefined) {
        throw new UsageError('--unscoped and --prune-scope each choose apps by scope: give one');
      }
      // Read before asking the hub: a folder that does not load is refused before anything else.
      const existing = options.dir === undefined ? undefined : await folderSpecs(io, options.dir);
      const { items } = await hubClient(command, io).call('apps.export', {
        ...(options.pruneScope !== undefined ? { scope: options.pruneScope } : {}),
      });
      const inScope = options.unscoped ? items.filter((app) => app.scope === null) : items;
      const where = options.pruneScope !== undefined ? ` in scope ${options.pruneScope}` : options.unscoped ? ' without a scope' : '';
      const apps = chosen(inScope, names, where);
      const text = await writer(json ? 'json' : compose ? 'compose' : 'yaml');
      if (options.dir === undefined) {
        io.stdout(apps.map((app) => text(app)).join('---\n'));
        return;
      }
      await mkdir(options.dir, { recursive: true });
      for (const app of apps) {
        // The name becomes a file name: only a DNS label, never a path, whatever the hub answered.
        if (!isName(app.name))
          throw new CliError(`the hub answered an app name that is not a DNS label: ${JSON.stringify(app.name)}`, EXIT_HUB_ERROR);
      }
      for (const place of placements(apps, existing!, options.dir, options.format, json)) {
        if ('skip' in place) {
          io.stderr(`note: app/${place.app.name} not written: ${place.skip}\n`);
          continue;
        }
        if ('same' in place) {
          io.stdout(`app/${place.app.name} unchanged in ${place.same} (revision ${place.app.revision})\n`);
          continue;
        }
        const write = place.format === 'yaml' || place.format === 'json' ? await writer(place.format) : text;
        await mkdir(dirname(place.file), { recursive: true });
        await writeFile(place.file, write(place.app));
        io.stdout(`app/${place.app.name} written to ${place.file} (revision ${place.app.revision})\n`);
      }
    });
}

/** The specs OUT already holds; refuses a folder whose specs do not load. */
async function folderSpecs(io: CliIO, dir: string): Promise<LoadedSpecSet> {
  const { InvalidSpecsError, loadFolderIfAny } = await import('../spec-files.js');
  try {
    return await loadFolderIfAny(io, dir);
  } catch (err) {
    if (!(err instanceof InvalidSpecsError)) throw err;
    throw new UsageError(
      `${dir} holds specs that do not load, so there is no telling which file defines which app: fix them (flotilla diff -f ${dir} lists the same problems), or export into an empty folder`,
      [...err.problems],
    );
  }
}

/** How an app becomes text: a spec as YAML or JSON, or a Compose file. */
async function writer(format: 'yaml' | 'json' | 'compose'): Promise<(app: ExportedApp) => string> {
  if (format === 'json') return (app) => `${JSON.stringify(app.spec, null, 2)}\n`;
  const { loadYaml } = await import('../yaml.js');
  await loadYaml();
  if (format === 'compose') {
    const { composeYaml } = await import('../compose/to-compose.js');
    return (app) => composeYaml(app.spec, app.revision);
  }
  const { specYaml } = await import('../spec-yaml.js');
  return (app) => specYaml(app.spec);
}

/** Where one app goes: a file (in the format its name says, for a spec file found in OUT), or nowhere, with why. */
type Placement =
  | { app: ExportedApp; file: string; format: 'yaml' | 'json' | 'as-asked' }
  | { app: ExportedApp; same: string }
  | { app: ExportedApp; skip: string };

/**
 * Where each app is written in OUT, given the specs OUT already holds: back into the
 * file that defines it alone, else under its own name, and nowhere when that would
 * leave it defined twice or overwrite a file that defines other apps. A file that
 * already holds the app's spec (key order aside) is left as it is, comments and all.
 * Pure: no I/O.
 */
export function placements(
  apps: readonly ExportedApp[],
  existing: Pick<LoadedSpecSet, 'specs' | 'origins'>,
  dir: string,
  format: Format,
  json: boolean,
): Placement[] {
  const definedIn = new Map(existing.specs.map((spec, i) => [spec.name, { origin: existing.origins[i]!, spec }]));
  const appsOf = new Map<string, string[]>();
  existing.specs.forEach((spec, i) => {
    const file = existing.origins[i]!.file;
    appsOf.set(file, [...(appsOf.get(file) ?? []), spec.name]);
  });
  const compose = format === 'compose';
  return apps.map((app): Placement => {
    const found = definedIn.get(app.name);
    if (found !== undefined) {
      const { origin } = found;
      if (origin.documents > 1) {
        return {
          app,
          skip: `${origin.file} defines it beside other apps: put its spec there by hand (flotilla export ${app.name} prints it)`,
        };
      }
      if (origin.compose !== compose) {
        const how = origin.compose ? 'export it with --format compose' : 'export it without --format compose';
        return {
          app,
          skip: `${origin.file} defines it as ${origin.compose ? 'a Compose file' : 'an app spec'}: ${how}, or delete that file first`,
        };
      }
      if (canonicalJson(found.spec) === canonicalJson(app.spec)) return { app, same: origin.file };
      const ownFormat = compose ? 'as-asked' : origin.file.endsWith('.json') ? 'json' : 'yaml';
      return { app, file: origin.file, format: ownFormat };
    }
    const file = compose ? join(dir, app.name, 'docker-compose.yml') : join(dir, `${app.name}.${json ? 'json' : 'yaml'}`);
    const others = appsOf.get(file);
    if (others !== undefined) {
      return {
        app,
        skip: `${file} defines ${others.map((name) => `app "${name}"`).join(', ')}: move that file, or export this app elsewhere`,
      };
    }
    return { app, file, format: 'as-asked' };
  });
}

/** The apps asked for, in the order asked (every app when none is named); any name the hub lacks is not found. */
function chosen(items: readonly ExportedApp[], names: readonly string[], where: string): ExportedApp[] {
  if (names.length === 0) return [...items];
  const byName = new Map(items.map((app) => [app.name, app]));
  const wanted = [...new Set(names.map((name) => name.replace(/^app\//, '')))];
  const missing = wanted.filter((name) => !byName.has(name));
  if (missing.length > 0) {
    throw new CliError(`${missing.map((name) => `app "${name}"`).join(', ')} not found${where}`, EXIT_NOT_FOUND);
  }
  return wanted.map((name) => byName.get(name)!);
}
