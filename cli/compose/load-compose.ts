/**
 * Reading one Compose document the way Compose reads it, then converting it
 * (from-compose.ts): variables come from the environment of the CLI over a
 * `.env` file beside the Compose file (the environment wins, as in
 * Compose), every string is interpolated, the document is checked against
 * the Compose specification's schema, and each `env_file` is read relative
 * to the Compose file's folder (stdin's: the current folder).
 *
 * Every problem of every stage comes back in one list, each naming its
 * field, so one run shows all there is to fix. An override file
 * (`docker-compose.override.yml`) is refused whole, with one problem saying
 * what to do: Flotilla does not merge Compose files.
 */
import { basename, dirname, join, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import type { CliIO } from '../context.js';
import { composeShapeProblems } from './compose-schema.js';
import { type ComposeOptions, type Conversion, composeToSpec, envFilesOf } from './from-compose.js';
import { interpolate, type Variables } from './interpolate.js';
import { overriddenFiles } from './is-compose.js';

export async function convertCompose(
  io: CliIO,
  file: string,
  document: Record<string, unknown>,
  options: ComposeOptions,
  environment: Variables = process.env,
): Promise<Conversion> {
  const folder = file === '-' ? process.cwd() : dirname(resolve(file));
  const overridden = file === '-' ? undefined : overriddenFiles(file);
  if (overridden !== undefined) return { ok: false, problems: [await overrideRefusal(io, file, folder, overridden)] };
  const dotenv = await optionalFile(io, join(folder, '.env'));
  const variables = { ...(dotenv === undefined ? {} : parseDotenv(dotenv)), ...environment };
  const interpolated = interpolate(document, variables);
  const value = interpolated.value as Record<string, unknown>;
  const problems = [...interpolated.problems, ...composeShapeProblems(value)];

  const envFiles = new Map<string, string>();
  for (const envFile of new Set(envFilesOf(value))) {
    const path = resolve(folder, envFile);
    const text = await optionalFile(io, path);
    if (text === undefined) problems.push(`env_file ${envFile}: cannot read ${path}`);
    else envFiles.set(envFile, text);
  }
  if (problems.length > 0) {
    // The shape is wrong somewhere: the mapping still names what it cannot map, so one run shows everything.
    let mapped: Conversion | undefined;
    try {
      mapped = composeToSpec({ document: value, variables, envFiles, options });
    } catch {
      mapped = undefined;
    }
    // A service with an unset variable is checked as if it were empty (`image: web:` from `web:${TAG}`):
    // what the spec's check then says of that service follows from the variable, already named.
    const unset = new Set(interpolated.problems.map((p) => /^services\.([^.:]+)[.:]/.exec(p)?.[1]).filter((s) => s !== undefined));
    const followsFromUnset = (p: string) => [...unset].some((service) => p.startsWith(`services.${service} (as spec.`));
    const more = mapped && !mapped.ok ? mapped.problems.filter((p) => !problems.includes(p) && !followsFromUnset(p)) : [];
    return { ok: false, problems: [...problems, ...more] };
  }
  return composeToSpec({ document: value, variables, envFiles, options });
}

/**
 * One problem for an override file, instead of those of reading it as an app of its own (no
 * image, no name): it says what to do with it, naming the file it overrides (the one beside it,
 * else the likelier name).
 */
async function overrideRefusal(io: CliIO, file: string, folder: string, overridden: string[]): Promise<string> {
  let base = overridden[0]!;
  for (const name of overridden) {
    if ((await optionalFile(io, join(folder, name))) !== undefined) {
      base = name;
      break;
    }
  }
  const merged = `docker-compose -f ${base} -f ${basename(file)} config`;
  return (
    `a Compose override file, which Flotilla does not merge: merge what the fleet needs of it into ${base} ` +
    `(${merged} prints the two merged), then leave it out of what flotilla reads (out of the folder, or off the command line)`
  );
}

async function optionalFile(io: CliIO, path: string): Promise<string | undefined> {
  try {
    return await io.readFile(path);
  } catch {
    return undefined;
  }
}
