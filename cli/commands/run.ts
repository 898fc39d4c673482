/**
 * `flotilla run` — makes a job (docs/jobs.md): one-off work, once on every device it
 * selects, online now or when it comes back before the deadline. Two forms:
 *
 *   flotilla run -f job.yaml [-w]                      # the whole spec, as `apply -f` (- reads stdin)
 *   flotilla run NAME --image IMG (--selector k=v … | --device ID … | --all) [flags] [-w] -- CMD ARGS…
 *
 * The second is Docker's and kubectl's habit: one container, named after the job, whose
 * command (Docker's CMD) is what follows `--`; the image's own CMD without it. The flags
 * build the same spec a file would hold.
 *
 * The spec is validated here before anything is sent, as `apply` does: every problem at
 * once, each naming its field (or, for the flag form, its flag), exit 2, nothing made. The
 * hub checks again and answers for what only it knows (which devices the selection
 * finds, a name in use, missing secrets).
 *
 * `-w` follows the job until it is no longer active and its devices have stopped what
 * a cancel or an abort stopped (job-watch.ts), printing the counts per state as they
 * change, and exits 0 when every device succeeded, 1 otherwise.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { validateJobSpec } from '../../shared/job-spec.js';
import type { JobSpec } from '../../shared/schemas/job.js';
import { formatIssue, type ValidationIssue } from '../../shared/validate.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { UsageError } from '../errors.js';
import { parseLabelAssignments } from '../labels.js';
import { parsePositiveInteger } from '../option-parsers.js';
import { parseDocuments, readSource } from '../spec-documents.js';
import { loadYaml } from '../yaml.js';
import { durationArg } from './agent-upgrade.js';

export interface RunOptions {
  filename?: string;
  image?: string;
  selector?: string[];
  device?: string[];
  all?: boolean;
  timeout?: string;
  retries?: number;
  backoff?: string;
  deadline?: string;
  maxConcurrent?: number;
  abortAfterFailures?: number;
  env?: string[];
  watch?: boolean;
}

/** The flags that describe the job itself: with -f the file does. */
const SPEC_FLAGS = [
  ['image', '--image'],
  ['selector', '--selector'],
  ['device', '--device'],
  ['all', '--all'],
  ['timeout', '--timeout'],
  ['retries', '--retries'],
  ['backoff', '--backoff'],
  ['deadline', '--deadline'],
  ['maxConcurrent', '--max-concurrent'],
  ['abortAfterFailures', '--abort-after-failures'],
  ['env', '--env'],
] as const satisfies readonly (readonly [keyof RunOptions, string])[];

export function registerRun(program: Command, io: CliIO): void {
  program
    .command('run')
    .argument('[name]', "the job's name; its one container is named after it")
    .argument('[command...]', "the container's command and its arguments, after -- (default: the image's CMD)")
    .description('run a job: one-off work, once on every device it selects, online now or when it comes back before the deadline')
    .option('-f, --filename <file>', 'the whole job spec, YAML or JSON (- reads stdin); instead of NAME and the flags')
    .option('--image <image>', 'the image to run')
    .addOption(
      new Option('-l, --selector <key=value>', 'run on devices with this label (repeatable, or k=v,k2=v2; all must match)').argParser(
        collect,
      ),
    )
    .addOption(new Option('--device <id>', 'run on this device (repeatable)').argParser(collect))
    .option('--all', 'run on every device')
    .addOption(new Option('--timeout <duration>', 'kill an attempt after this long: timed-out (default 1h)').argParser(durationArg))
    .addOption(new Option('--retries <n>', 'attempts after the first, when one fails or times out (default 0)').argParser(retriesArg))
    .addOption(
      new Option('--backoff <duration>', 'the wait before the first retry, doubled for each one after (default 10s)').argParser(
        durationArg,
      ),
    )
    .option('--deadline <duration|time>', 'devices that have not started by then count as expired: 24h, or an RFC 3339 time (default 7d)')
    .addOption(new Option('--max-concurrent <n>', 'at most this many devices run it at once').argParser(parsePositiveInteger))
    .addOption(
      new Option('--abort-after-failures <n>', 'after this many devices failed or timed out, cancel the rest').argParser(
        parsePositiveInteger,
      ),
    )
    .addOption(new Option('-e, --env <key=value>', 'set an environment variable in the container (repeatable)').argParser(collect))
    .option(
      '-w, --watch',
      'follow the job, printing its counts as they change: exit 0 when every device succeeded, 1 otherwise (failed, timed-out, canceled, expired, aborted)',
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        "  flotilla run diag --selector site=lab --image busybox:1.36 -- sh -c 'uname -a; df -h /'",
        '  flotilla run -f job.yaml -w',
        '',
        'A window, retries on one outcome only, several containers or secrets: write the spec in a file',
        '(docs/jobs.md) and run it with -f.',
      ].join('\n'),
    )
    .action(async (name: string | undefined, argv: string[], options: RunOptions, command: Command) => {
      const spec =
        options.filename !== undefined ? await specFromFile(io, options, name, argv) : specFromFlags(name, argv, options, command);
      const client = hubClient(command, io);
      const format = globalOptions(command).output;
      const job = await client.call('jobs.create', { spec });
      // Only now: the text module brings the views of get and describe, which a refused spec never needs.
      const { createdText, progressLine } = await import('../job-text.js');
      if (options.watch && format === 'json') io.stdout(`${JSON.stringify(job)}\n`);
      else render(io, format, job, () => createdText(job, options.watch === true));
      if (!options.watch) return;
      const { exitByOutcome, watchJob } = await import('./job-watch.js');
      const end = await watchJob(io, client, job.name, {
        format,
        show: progressLine,
        changeKey: (now) => JSON.stringify([now.phase, now.counts]),
        createdAt: job.createdAt,
      });
      exitByOutcome(end);
    });
}

/** `-f FILE`: one job spec, validated whole; the job flags and NAME belong to the other form. */
async function specFromFile(io: CliIO, options: RunOptions, name: string | undefined, argv: readonly string[]): Promise<JobSpec> {
  const given: string[] = SPEC_FLAGS.filter(([key]) => options[key] !== undefined).map(([, flag]) => flag);
  if (name !== undefined || argv.length > 0) given.unshift(name !== undefined ? `NAME "${name}"` : 'a command');
  if (given.length > 0) {
    throw new UsageError(`-f takes the whole job from the file: leave out ${given.join(', ')} (or leave out -f and give the job by flags)`);
  }
  const file = options.filename!;
  await loadYaml(); // parseDocuments then finds it loaded
  const docs = parseDocuments(file, await readSource(io, file), 'job spec');
  const [doc] = docs;
  if (docs.length > 1) {
    throw new UsageError(`${file === '-' ? '<stdin>' : file}: holds ${docs.length} documents: flotilla run takes one job (one file each)`);
  }
  if (doc!.error) throw doc!.error;
  const result = validateJobSpec(doc!.value);
  if (!result.ok) throw new UsageError(`${doc!.source}: invalid job spec`, result.issues.map(formatIssue));
  return result.value;
}

/**
 * `NAME --image IMG … -- CMD`: the spec the flags describe, validated; throws a UsageError
 * naming the fix for what is missing or contradicts itself, and one listing every flag
 * the spec's rules refuse.
 */
export function specFromFlags(name: string | undefined, argv: readonly string[], options: RunOptions, command?: Command): JobSpec {
  if (name === undefined) {
    throw new UsageError('run needs a job: -f FILE, or NAME --image IMAGE with --selector, --device or --all (see flotilla run --help)');
  }
  if (command !== undefined && nameAfterDashes(command, name, argv)) {
    throw new UsageError(`run needs the job's name before --: flotilla run NAME --image IMAGE … -- ${[name, ...argv].join(' ')}`);
  }
  if (options.image === undefined)
    throw new UsageError(`run needs the image to run: --image IMAGE (e.g. flotilla run ${name} --image busybox:1.36 …)`);
  const scheduling = schedulingOf(options);
  if (options.backoff !== undefined && !options.retries) {
    throw new UsageError('--backoff is the wait before a retry: give --retries N too');
  }
  const env = (options.env ?? []).map(envVar);
  const spec = {
    name,
    scheduling,
    spec: {
      containers: [
        {
          name,
          image: options.image,
          ...(argv.length > 0 ? { command: [...argv] } : {}),
          ...(env.length > 0 ? { env } : {}),
        },
      ],
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      ...(options.retries
        ? { retries: { limit: options.retries, ...(options.backoff !== undefined ? { backoff: options.backoff } : {}) } }
        : {}),
      ...(options.deadline !== undefined ? { deadline: options.deadline } : {}),
      ...(options.maxConcurrent !== undefined || options.abortAfterFailures !== undefined
        ? {
            rollout: {
              ...(options.maxConcurrent !== undefined ? { maxConcurrent: options.maxConcurrent } : {}),
              ...(options.abortAfterFailures !== undefined ? { abortAfterFailures: options.abortAfterFailures } : {}),
            },
          }
        : {}),
    },
  };
  const result = validateJobSpec(spec);
  if (result.ok) return result.value;
  const lines = [...new Set(result.issues.map((issue) => flagIssue(issue, options.env ?? [])))];
  throw new UsageError(`invalid job "${name}"`, lines);
}

/** `--selector`s (all must match), `--device`s, or `--all` (every device: selectors `{}`). */
function schedulingOf(options: RunOptions): JobSpec['scheduling'] {
  const selectors = parseLabelAssignments((options.selector ?? []).flatMap((arg) => arg.split(',')));
  const devices = [...new Set(options.device ?? [])];
  const hasSelectors = Object.keys(selectors).length > 0;
  if (options.all && (hasSelectors || devices.length > 0)) {
    throw new UsageError('--all selects every device: leave out --selector and --device, or leave out --all');
  }
  if (options.all) return { selectors: {} };
  if (!hasSelectors && devices.length === 0) {
    throw new UsageError('run needs the devices to run the job on: --selector KEY=VALUE, --device ID or --all');
  }
  return { ...(hasSelectors ? { selectors } : {}), ...(devices.length > 0 ? { devices } : {}) };
}

/**
 * Whether NAME was written after `--` (`flotilla run --image x -- sh -c …`): commander
 * gives the words after `--` as operands too, so the job would be named after the command.
 * Only the program's raw arguments still show where `--` was (commander keeps them as
 * `rawArgs`, which its typings leave out; test/unit/cli-job-commands.test.ts holds it).
 */
function nameAfterDashes(command: Command, name: string, argv: readonly string[]): boolean {
  const raw = (command.parent as (Command & { rawArgs?: string[] }) | null)?.rawArgs ?? [];
  const dashes = raw.indexOf('--');
  return dashes >= 0 && raw.length - dashes - 1 === argv.length + 1 && raw[dashes + 1] === name;
}

/** `KEY=VALUE` (the value may be empty or hold `=`), as `docker run -e`. */
function envVar(arg: string): { name: string; value: string } {
  const at = arg.indexOf('=');
  if (at <= 0) throw new UsageError(`invalid --env "${arg}": expected KEY=VALUE`);
  return { name: arg.slice(0, at), value: arg.slice(at + 1) };
}

/** Where in the spec each flag lands, so an issue names what the operator typed. */
const FLAG_OF_PATH: readonly [RegExp, string][] = [
  [/^name$/, 'NAME'],
  [/^spec\.containers\[0\]\.name$/, 'NAME'],
  [/^spec\.containers\[0\]\.image$/, '--image'],
  [/^spec\.containers\[0\]\.command/, 'the command after --'],
  [/^scheduling\.selectors/, '--selector'],
  [/^scheduling\.devices/, '--device'],
  [/^scheduling$/, '--selector, --device or --all'],
  [/^spec\.timeout$/, '--timeout'],
  [/^spec\.deadline$/, '--deadline'],
  [/^spec\.retries\.limit$/, '--retries'],
  [/^spec\.retries\.backoff$/, '--backoff'],
  [/^spec\.rollout\.maxConcurrent$/, '--max-concurrent'],
  [/^spec\.rollout\.abortAfterFailures$/, '--abort-after-failures'],
];

/** `--deadline: must be in the future (…)`; `--env 1X=y: …` for the one that is wrong; the spec path when no flag sets it. */
function flagIssue(issue: ValidationIssue, envArgs: readonly string[]): string {
  const env = /^spec\.containers\[0\]\.env\[([0-9]+)\]/.exec(issue.path);
  if (env) return `--env ${envArgs[Number(env[1])] ?? ''}: ${issue.message}`.replace(' :', ':');
  const flag = FLAG_OF_PATH.find(([path]) => path.test(issue.path))?.[1];
  return flag !== undefined ? `${flag}: ${issue.message}` : formatIssue(issue);
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** 0 to 100, as the spec's `retries.limit`. */
function retriesArg(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) > 100) throw new InvalidArgumentError('expected a whole number from 0 to 100.');
  return Number(value);
}
