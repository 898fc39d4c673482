/**
 * The set of app specs `apply -f` and `diff -f` send as one unit: every
 * `-f` is a file, `-` for stdin, or a folder walked recursively in sorted
 * order for `*.yaml`, `*.yml` and `*.json` (dot-files and dot-folders such as
 * `.git` are skipped). A file may hold several documents.
 *
 * Invariants:
 * - Every problem is found in one pass and reported together, each line naming
 *   its file, document and field (`apps/web.yaml (document 2):
 *   spec.containers[0].image: must be string`); the set is returned only when
 *   there are none, so nothing partial is ever sent.
 * - A folder that holds no spec is an error, never an empty set: an empty
 *   checkout must not read as "the fleet has no apps" and prune it.
 * - An app named twice in the set is an error naming both places.
 * - `sources[i]` names where `specs[i]` came from, so the hub's issues about
 *   `specs[i]…` print the same way (locateHubIssues).
 * - A document with top-level `services` and no `spec` is a Compose file,
 *   converted to a spec (compose/load-compose.ts) with the name and scheduling
 *   of `compose` where it gives them; `--name` names one app, so with several
 *   Compose documents each must carry its own `x-flotilla.name` (or `name:`).
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { MAX_APPLY_BYTES, MAX_APPLY_SPECS } from '../shared/api/methods.js';
import { validateAppSpec } from '../shared/app-spec.js';
import { validateJobSpec } from '../shared/job-spec.js';
import type { AppSpec } from '../shared/schemas/spec.js';
import { formatIssue } from '../shared/validate.js';
import { HubError } from './client.js';
import type { ComposeOptions } from './compose/from-compose.js';
import { isComposeDocument, overriddenFiles } from './compose/is-compose.js';
import type { CliIO } from './context.js';
import { CliError, UsageError } from './errors.js';
import { parseDocuments, readSource } from './spec-documents.js';
import { loadYaml } from './yaml.js';

/** The extensions a folder's spec files have; a file named on the command line is read whatever its name. */
export const SPEC_EXTENSIONS = ['.yaml', '.yml', '.json'] as const;

export interface SpecSet {
  specs: AppSpec[];
  /** Where each spec came from, as messages name it: `apps/web.yaml`, `apps/all.yaml (document 2)`. */
  sources: string[];
}

/** A set as read from files: with what converting Compose files left to the operator (a secret to set, a network to create), each naming its file. */
export interface LoadedSpecSet extends SpecSet {
  notes: string[];
  /** The file each spec came from (`origins[i]` for `specs[i]`), for `export --dir` to write an app back where it is defined. */
  origins: SpecOrigin[];
  /** Whether `specs[i]` was converted from a Compose document: its containers are the file's services, by name. */
  fromCompose: boolean[];
}

/** A file of the set: several specs of one file share one origin. */
export interface SpecOrigin {
  /** As the loader named it (`apps/web.yaml`; `-` for stdin). */
  file: string;
  /** How many documents it holds, empty ones left out. */
  documents: number;
  /** Whether a document of it is a Compose file. */
  compose: boolean;
}

/**
 * Bad specs found before anything was sent. `problems` holds one line per problem,
 * named by file, document and field, each followed by its details (indented by two
 * spaces: a YAML parser's explanation). One problem is the error's message itself;
 * several are listed under one.
 */
export class InvalidSpecsError extends UsageError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    const count = problems.filter((line) => !line.startsWith(' ')).length;
    const [first, ...details] = problems;
    if (count === 1)
      super(
        first!,
        details.map((line) => line.slice(2)),
      );
    else super(`${count} problems in the specs: nothing was sent to the hub`, problems);
    this.problems = problems;
    this.name = 'InvalidSpecsError';
  }
}

/** Reads every path, validates every document, and returns the set; throws InvalidSpecsError listing every problem. */
export async function loadSpecSet(io: CliIO, paths: readonly string[], compose: ComposeOptions = {}): Promise<LoadedSpecSet> {
  const set = await readSpecSet(io, paths, compose, { emptyFolder: 'problem' });
  if (set.specs.length > MAX_APPLY_SPECS) {
    throw new UsageError(
      `${set.specs.length} app specs: the hub takes at most ${MAX_APPLY_SPECS} in one set; split them into folders, each applied with its own --prune-scope`,
    );
  }
  return set;
}

/**
 * The specs a folder already holds, read as loadSpecSet reads them, for `export --dir` to
 * find where each app is defined: none when the folder does not exist or holds no spec.
 * Throws InvalidSpecsError when its specs do not load.
 */
export async function loadFolderIfAny(io: CliIO, folder: string): Promise<LoadedSpecSet> {
  if (!(await isFolder(folder))) return { specs: [], sources: [], notes: [], origins: [], fromCompose: [] };
  return readSpecSet(io, [folder], {}, { emptyFolder: 'none' });
}

async function readSpecSet(
  io: CliIO,
  paths: readonly string[],
  compose: ComposeOptions,
  { emptyFolder }: { emptyFolder: 'problem' | 'none' },
): Promise<LoadedSpecSet> {
  await loadYaml(); // parseDocuments then finds it loaded
  const problems: string[] = [];
  const notes: string[] = [];
  const found: { spec: AppSpec; source: string; origin: SpecOrigin; fromCompose: boolean }[] = [];
  let composeDocuments = 0;
  for (const path of paths) {
    const files = await specFiles(path, problems);
    if (files === undefined) continue;
    const inFolder = files.folder;
    let documents = 0;
    for (const file of files.names) {
      let text: string;
      try {
        text = await readSource(io, file);
      } catch (err) {
        problems.push(err instanceof CliError ? err.message : `${file}: ${(err as Error).message}`);
        continue;
      }
      const origin: SpecOrigin = { file, documents: 0, compose: false };
      for (const doc of parseDocuments(file, text, 'app spec', { allowEmpty: inFolder })) {
        documents++;
        origin.documents++;
        if (doc.error) {
          problems.push(doc.error.message, ...doc.error.lines.map((line) => `  ${line}`));
          continue;
        }
        let checked: { spec: AppSpec } | { problems: string[] };
        let fromCompose = false;
        if (isComposeDocument(doc.value)) {
          fromCompose = true;
          // An override file is refused on its own (load-compose.ts): it names no app, so --name still names one.
          if (overriddenFiles(file) === undefined) composeDocuments++;
          origin.compose = true;
          const { convertCompose } = await import('./compose/load-compose.js');
          const converted = await convertCompose(io, file, doc.value, compose);
          checked = converted.ok ? { spec: converted.spec } : { problems: converted.problems.map((p) => `${doc.source}: ${p}`) };
          if (converted.ok) notes.push(...converted.notes.map((note) => `${doc.source}: ${note}`));
        } else checked = checkDocument(doc.value, doc.source, file);
        if ('spec' in checked) found.push({ spec: checked.spec, source: doc.source, origin, fromCompose });
        else problems.push(...checked.problems);
      }
    }
    if (inFolder && documents === 0 && emptyFolder === 'problem') {
      problems.push(
        `${path}: no app spec found in the folder (it reads ${SPEC_EXTENSIONS.join(', ')} files; dot-files and dot-folders are skipped)`,
      );
    }
  }
  problems.push(...composeOptionProblems(compose, composeDocuments));
  problems.push(...duplicateNames(found));
  if (problems.length > 0) throw new InvalidSpecsError(problems);
  return {
    specs: found.map((f) => f.spec),
    sources: found.map((f) => f.source),
    notes,
    origins: found.map((f) => f.origin),
    fromCompose: found.map((f) => f.fromCompose),
  };
}

const MIB = 1024 * 1024;

/** Refuses, before anything is sent, a request for a set (`apps.applyAll`, `apps.plan`) larger than the hub reads. */
export function checkRequestSize(body: unknown): void {
  const bytes = Buffer.byteLength(JSON.stringify(body));
  if (bytes <= MAX_APPLY_BYTES) return;
  // Rounded up: 8.01 MiB must not print as "8.0 MiB" beside a limit of 8.
  const size = Math.ceil((bytes / MIB) * 10) / 10;
  throw new UsageError(
    `the specs are ${size.toFixed(1)} MiB; one apply takes at most ${MAX_APPLY_BYTES / MIB} MiB: split the folder into scopes (--prune-scope) and apply each`,
  );
}

/** `--name`, `--selector` and `--device` say something only of Compose files, and `--name` of one. */
function composeOptionProblems(compose: ComposeOptions, composeDocuments: number): string[] {
  const given = compose.name !== undefined || compose.scheduling !== undefined;
  if (given && composeDocuments === 0) {
    return ['--name, --selector and --device are for Compose files: an app spec names its app and devices itself'];
  }
  if (compose.name !== undefined && composeDocuments > 1) {
    return [
      `--name names one app, and the set holds ${composeDocuments} Compose files: leave it out and give each file its own x-flotilla: {name: APP} (docker-compose 1.29 refuses a top-level name:)`,
    ];
  }
  return [];
}

/** An app spec, or the problems of a document that is none (a valid job spec is told where it belongs). */
function checkDocument(value: unknown, source: string, file: string): { spec: AppSpec } | { problems: string[] } {
  const app = validateAppSpec(value);
  if (app.ok) return { spec: app.value };
  if (validateJobSpec(value).ok) {
    return {
      problems: [`${source}: a job spec, not an app spec: run it with flotilla run -f ${file === '-' ? '-' : file} (one job per file)`],
    };
  }
  return { problems: app.issues.map((issue) => `${source}: ${formatIssue(issue)}`) };
}

function duplicateNames(found: readonly { spec: AppSpec; source: string }[]): string[] {
  const first = new Map<string, string>();
  const problems: string[] = [];
  for (const { spec, source } of found) {
    const earlier = first.get(spec.name);
    if (earlier === undefined) first.set(spec.name, source);
    else problems.push(`${source}: app "${spec.name}" is also defined in ${earlier}: each app may be named once in the set`);
  }
  return problems;
}

/**
 * What one `-f` names: itself when it is `-` or not a folder (reading it then says
 * whether it exists), else the spec files under it. Undefined, with the problem
 * pushed, when the folder cannot be walked.
 */
async function specFiles(path: string, problems: string[]): Promise<{ folder: boolean; names: string[] } | undefined> {
  if (path === '-' || !(await isFolder(path))) return { folder: false, names: [path] };
  const names: string[] = [];
  try {
    await walk(path, names, { root: await realpath(path), given: path, seen: new Set(), problems });
  } catch (err) {
    problems.push(`${path}: cannot read the folder: ${(err as Error).message}`);
    return undefined;
  }
  return { folder: true, names };
}

async function isFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

interface Walk {
  /** The real path of the folder `-f` names: links may lead anywhere under it, and nowhere else. */
  root: string;
  /** That folder as given, for messages. */
  given: string;
  /** Real paths of the folders walked so far, so a loop of links is walked once. */
  seen: Set<string>;
  problems: string[];
}

/**
 * Spec files under `folder`, depth first, entries in code-point order of their names, so a
 * folder gives the same set in the same order on every machine. A symbolic link to a spec
 * file or a folder is followed when it leads inside the `-f` folder, and is a problem when
 * it leads out of it: followed, `ln -s .. loop` would read the whole parent tree into the
 * set; skipped, the apps behind a link made on purpose would drop out of the set and
 * `--prune` would delete them. A folder reached twice through links is walked once.
 */
async function walk(folder: string, into: string[], at: Walk): Promise<void> {
  const real = await realpath(folder);
  if (at.seen.has(real)) return;
  at.seen.add(real);
  const entries = (await readdir(folder, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(folder, entry.name);
    const folderEntry = entry.isDirectory() || (entry.isSymbolicLink() && (await isFolder(path)));
    const specFile = !folderEntry && SPEC_EXTENSIONS.some((ext) => entry.name.endsWith(ext));
    if (!folderEntry && !specFile) continue;
    if (entry.isSymbolicLink()) {
      const target = await realpath(path).catch(() => undefined); // a dangling link is read, and reported, as a missing file
      if (target !== undefined && !isInside(target, at.root)) {
        at.problems.push(
          `${path}: a symbolic link to ${target}, outside ${at.given}: only links inside the folder are followed; give the target its own -f, or move its specs into the folder`,
        );
        continue;
      }
    }
    if (folderEntry) await walk(path, into, at);
    else into.push(path);
  }
}

function isInside(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel === '' || (rel.split(sep)[0] !== '..' && !isAbsolute(rel));
}

/** `specs[3].spec.containers[0]` → index 3 and the rest of the path (`spec.containers[0]`, or `` for the document). */
const SPEC_PATH = /^specs\[(\d+)\](?:\.(.*)|(\[.*))?$/;

/**
 * The hub's error about a set, with each `specs[i]…` issue named as the loader
 * names its document: `apps/web.yaml (document 2): spec.containers[0].env[0].fromSecret:
 * secret "db" does not exist: set it first (flotilla secret set db …)`. Mentions of
 * `specs[j]` in a message become the document's name too. An issue of a spec converted
 * from a Compose file names the service, as the conversion's own problems do
 * (`docker-compose.yml: services.web (as spec.containers[1].image): …`). Anything else is
 * returned as it was.
 */
export function locateHubIssues(
  err: unknown,
  set: Pick<LoadedSpecSet, 'specs' | 'sources'> & Partial<Pick<LoadedSpecSet, 'fromCompose'>>,
): unknown {
  const issues = err instanceof HubError ? err.details?.issues : undefined;
  if (!(err instanceof HubError) || issues === undefined || issues.length === 0) return err;
  const name = (index: string) => set.sources[Number(index)] ?? `specs[${index}]`;
  const lines = issues.map((issue) => {
    const message = withFix(issue.message.replace(/\bspecs\[(\d+)\]/g, (_, index: string) => name(index)));
    const match = SPEC_PATH.exec(issue.path);
    if (!match) return formatIssue({ path: issue.path, message });
    const index = Number(match[1]);
    const rest = match[2] ?? match[3] ?? '';
    if (rest === '') return `${name(match[1]!)}: ${message}`;
    const service = set.fromCompose?.[index] ? serviceOf(set.specs[index], rest) : undefined;
    if (service !== undefined) return `${name(match[1]!)}: services.${service} (as ${rest}): ${message}`;
    return `${name(match[1]!)}: ${formatIssue({ path: rest, message })}`;
  });
  return new CliError(err.message, err.exitCode, lines);
}

/** The Compose service a spec path of a converted spec is about: its containers and init containers are named after the services. */
function serviceOf(spec: AppSpec | undefined, path: string): string | undefined {
  const match = /^spec\.(containers|initContainers)\[(\d+)\]/.exec(path);
  if (!match || !spec) return undefined;
  const list = match[1] === 'containers' ? spec.spec.containers : (spec.spec.initContainers ?? []);
  return list[Number(match[2])]?.name;
}

/** The hub says what is wrong; for a secret that does not exist the CLI adds how to make it. */
function withFix(message: string): string {
  const missing = /^secret "([^"]+)" does not exist$/.exec(message);
  return missing ? `${message}: set it first (flotilla secret set ${missing[1]} …)` : message;
}
