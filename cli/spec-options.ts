/**
 * The options `apply`, `diff` and `export` share: repeatable `-f`, the prune
 * scope, the source reference and, for Compose files, the app's name and
 * devices (`--name`, `--selector`, `--device`), checked here so a mistyped value is a usage
 * error naming the rule rather than a round trip to the hub.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { isName, MAX_SOURCE_LENGTH, SOURCE_PATTERN } from '../shared/ids.js';
import type { ComposeOptions } from './compose/from-compose.js';
import { UsageError } from './errors.js';
import { labelProblem } from './labels.js';

/** No default: a default would satisfy `requiredOption`, and `apply` without `-f` must be a usage error. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function filenameOption(verb: string): Option {
  return new Option(
    '-f, --filename <path>',
    `a spec or Compose file, a folder (${verb} every *.yaml, *.yml and *.json under it, skipping dot-files and dot-folders), or - for stdin; repeatable`,
  )
    .argParser(collect)
    .makeOptionMandatory();
}

/** A prune scope is a name like an app's: a DNS label. */
export function parseScope(value: string): string {
  if (!isName(value)) {
    throw new InvalidArgumentError('expected a scope name: lower-case letters, digits and "-", at most 63 characters (e.g. fleet-config).');
  }
  return value;
}

/** The hub's own rule for a source (its `apps.applyAll` schema), checked before the round trip. */
const SOURCE = new RegExp(SOURCE_PATTERN);

/**
 * Where the specs come from (`git:<sha>`), as the hub records it: printable ASCII without
 * spaces, 1–256 characters. An empty `--source ""` is refused like any other bad value: it
 * would record nothing while looking as if it recorded something.
 */
export function parseSource(value: string): string {
  if (!SOURCE.test(value) || value.length > MAX_SOURCE_LENGTH) {
    throw new InvalidArgumentError(SOURCE_RULE);
  }
  return value;
}

const SOURCE_RULE = 'expected printable ASCII without spaces, 1-256 characters (e.g. git:3f2c1e0).';

/**
 * `--source REF`, which defaults to FLOTILLA_SOURCE. The variable is read by sourceOf, not by
 * commander's `.env()`, because an empty variable must count as unset (CI systems set variables
 * to "" rather than leave them out) while an empty `--source ""` is refused.
 */
export function sourceOption(): Option {
  return new Option(
    '--source <ref>',
    'where the specs come from, recorded on every new revision and shown by rollout history (e.g. git:SHA); default: $FLOTILLA_SOURCE, where an empty value counts as unset',
  ).argParser(parseSource);
}

/** The source to send: the flag, else FLOTILLA_SOURCE unless it is empty; a bad variable is a usage error naming it. */
export function sourceOf(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (flag !== undefined) return flag;
  const value = env.FLOTILLA_SOURCE;
  if (value === undefined || value === '') return undefined;
  try {
    return parseSource(value);
  } catch {
    throw new UsageError(`FLOTILLA_SOURCE=${JSON.stringify(value)} is not a source: ${SOURCE_RULE}`);
  }
}

export function scopeOption(description: string): Option {
  return new Option('--prune-scope <name>', description).argParser(parseScope);
}

/**
 * `--prune` deletes the apps of a scope, so it needs one: without it there is no
 * telling this folder's apps from another team's.
 */
export function checkPrune(options: { prune?: boolean; pruneScope?: string }): void {
  if (options.prune && options.pruneScope === undefined) {
    throw new UsageError(
      "--prune needs --prune-scope NAME: only apps recorded with that scope are deleted, so another team's apps are never touched (e.g. --prune --prune-scope fleet-config)",
    );
  }
}

/** `--name`, `--selector` and `--device`, for Compose files (a Flotilla spec names its app and devices itself). */
export interface ComposeFlags {
  name?: string;
  selector?: string[];
  device?: string[];
}

/** Adds `--name APP`, `--selector k=v …` and `--device ID …` to a command that reads Compose files. */
export function addComposeOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--name <app>',
        "the app's name, for a Compose file (default: the file's x-flotilla: {name: …}, or its top-level name:, which docker-compose 1.29 refuses)",
      ).argParser((value: string) => {
        if (!isName(value))
          throw new InvalidArgumentError('expected an app name: lower-case letters, digits and "-", at most 63 characters.');
        return value;
      }),
    )
    .addOption(
      new Option(
        '--selector <key=value>',
        'for a Compose file: run it on the devices with this label; repeatable (all must match)',
      ).argParser((value: string, previous: string[] = []) => {
        const at = value.indexOf('=');
        const problem = at < 0 ? 'expected key=value' : labelProblem(value.slice(0, at), value.slice(at + 1));
        if (problem) throw new InvalidArgumentError(`${problem}.`);
        return [...previous, value];
      }),
    )
    .addOption(new Option('--device <id>', 'for a Compose file: run it on this device; repeatable').argParser(collect));
}

/** The Compose options the flags give: a name, and scheduling when a selector or device is given. */
export function composeOptionsOf(flags: ComposeFlags): ComposeOptions {
  const selectors = flags.selector?.map((arg) => {
    const at = arg.indexOf('=');
    return [arg.slice(0, at), arg.slice(at + 1)] as const;
  });
  const scheduling =
    selectors || flags.device
      ? { ...(selectors ? { selectors: Object.fromEntries(selectors) } : {}), ...(flags.device ? { devices: flags.device } : {}) }
      : undefined;
  return { ...(flags.name !== undefined ? { name: flags.name } : {}), ...(scheduling ? { scheduling } : {}) };
}
