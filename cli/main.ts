/**
 * `flotilla` — the operator CLI.
 *
 * Exit codes (stable; scripts may rely on them):
 *   0  success (including --help)
 *   1  the hub answered with an error other than 400/404, or could not be reached
 *      (`error: cannot reach the hub at <url>: <reason>`)
 *   2  invalid input: bad arguments or options (commander's usage errors too), an
 *      invalid spec or label, or the hub answered 400
 *   3  not found: the hub answered 404
 *   4  refused: the hub answered 401 (no valid token: pass --token or set
 *      FLOTILLA_TOKEN; the hub's admin key is in <data-dir>/admin.key) or 403
 *      (the token's role may not do this); `agent register` with a bad,
 *      used-up, expired or revoked registration token
 *
 * `diff` exits 1 when it found changes, as `kubectl diff`, so an error of its
 * own that would exit 1 exits 5 instead: every error of `diff` is 2 or more.
 *
 * `exec` and `shell` exit with the remote command's own exit code instead
 * (CommandExit); when their session fails they use the codes above.
 *
 * Errors go to stderr as `error: <message>`, with details (spec issues) on
 * indented lines below; stdout carries only results, so `-o json` pipes cleanly.
 */
import { Command, CommanderError, Option } from 'commander';
import { flotillaVersion } from '../shared/version.js';
import { CommandExit, EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_OK, type ExitCode, isCliError } from './errors.js';
import { type CliIO, processIO } from './io.js';
import { OUTPUT_FORMATS } from './output-formats.js';

export { EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_NOT_FOUND, EXIT_OK, EXIT_UNAUTHORIZED, type ExitCode } from './errors.js';

export const DEFAULT_HUB = 'http://127.0.0.1:7070';

/** Adds one top-level command (and its subcommands) to the program. */
export type RegisterCommand = (program: Command, io: CliIO) => void;

/**
 * Every top-level command, in the order `--help` lists them. Each module is
 * imported only when its command runs (or for the full help): the hub, the
 * agent, the spec validator and the API client are heavy, and `flotilla get
 * devices` should not pay for `flotilla server`.
 */
export const COMMANDS: readonly { name: string; load: () => Promise<RegisterCommand> }[] = [
  { name: 'apply', load: async () => (await import('./commands/apply.js')).registerApply },
  { name: 'diff', load: async () => (await import('./commands/diff.js')).registerDiff },
  { name: 'convert', load: async () => (await import('./commands/convert.js')).registerConvert },
  { name: 'export', load: async () => (await import('./commands/export.js')).registerExport },
  { name: 'run', load: async () => (await import('./commands/run.js')).registerRun },
  { name: 'get', load: async () => (await import('./commands/get.js')).registerGet },
  { name: 'describe', load: async () => (await import('./commands/describe.js')).registerDescribe },
  { name: 'delete', load: async () => (await import('./commands/delete.js')).registerDelete },
  { name: 'label', load: async () => (await import('./commands/label.js')).registerLabel },
  { name: 'secret', load: async () => (await import('./commands/secret.js')).registerSecret },
  { name: 'rollout', load: async () => (await import('./commands/rollout.js')).registerRollout },
  { name: 'rollback', load: async () => (await import('./commands/rollback.js')).registerRollback },
  { name: 'job', load: async () => (await import('./commands/job.js')).registerJob },
  { name: 'logs', load: async () => (await import('./commands/logs.js')).registerLogs },
  { name: 'events', load: async () => (await import('./commands/events.js')).registerEvents },
  { name: 'top', load: async () => (await import('./commands/top.js')).registerTop },
  { name: 'metrics', load: async () => (await import('./commands/metrics.js')).registerMetrics },
  { name: 'exec', load: async () => (await import('./commands/exec.js')).registerExec },
  { name: 'shell', load: async () => (await import('./commands/shell.js')).registerShell },
  { name: 'port-forward', load: async () => (await import('./commands/port-forward.js')).registerPortForward },
  { name: 'ssh-proxy', load: async () => (await import('./commands/ssh-proxy.js')).registerSshProxy },
  { name: 'inventory', load: async () => (await import('./commands/inventory.js')).registerInventory },
  { name: 'audit', load: async () => (await import('./commands/audit.js')).registerAudit },
  { name: 'server', load: async () => (await import('./commands/server.js')).registerServer },
  { name: 'agent', load: async () => (await import('./commands/agent.js')).registerAgent },
  { name: 'migrate', load: async () => (await import('./commands/migrate.js')).registerMigrate },
  { name: 'certs', load: async () => (await import('./commands/certs.js')).registerCerts },
  { name: 'token', load: async () => (await import('./commands/token.js')).registerToken },
  { name: 'serviceaccount', load: async () => (await import('./commands/serviceaccount.js')).registerServiceAccount },
  { name: 'device', load: async () => (await import('./commands/device.js')).registerDevice },
  { name: 'version', load: async () => (await import('./commands/version.js')).registerVersion },
];

/** Every command's registration, in COMMANDS order: the whole tree, for the full help and the reference. */
export function loadAllCommands(): Promise<RegisterCommand[]> {
  return Promise.all(COMMANDS.map((command) => command.load()));
}

/** Global options that take a value as the next argument (`--hub URL`), so that value is not taken for the command. */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--hub', '-o', '--output', '--token', '--ca']);

/** What `argv` starts with, past global options: a command's name, the root's `--version`, or neither. */
function firstWord(argv: readonly string[]): { command: (typeof COMMANDS)[number] | undefined; version: boolean } {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) {
      i++;
      continue;
    }
    if (/^(--(hub|output|token|ca)=|-o.)/.test(arg)) continue;
    if (arg === '-V' || arg === '--version') return { command: undefined, version: true };
    if (arg.startsWith('-')) break;
    return { command: COMMANDS.find((candidate) => candidate.name === arg), version: false };
  }
  return { command: undefined, version: false };
}

/**
 * What `argv` needs registered: only the command it names, when it names one;
 * none for `--version`; everything otherwise (`--help`, no command, an unknown
 * command or option), so commander's help and its "did you mean" suggestions
 * are what the whole tree gives.
 */
export async function commandsFor(argv: readonly string[]): Promise<RegisterCommand[]> {
  const first = firstWord(argv);
  if (first.command) return [await first.command.load()];
  return first.version ? [] : loadAllCommands();
}

/**
 * The command tree with `commands` registered. Commander never exits the process itself
 * (`exitOverride`): its usage errors are thrown and mapped to exit code 2 by `run`.
 */
export function buildProgram(io: CliIO, commands: readonly RegisterCommand[], options: { version?: boolean } = {}): Command {
  const program = new Command('flotilla').description('Flotilla: run containers on fleets of small devices, over MQTT');
  if (options.version !== false) program.version(flotillaVersion(), '-V, --version');
  program
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout(text),
      writeErr: (text) => io.stderr(text),
    })
    .showHelpAfterError('(run with --help for usage)')
    .addOption(new Option('--hub <url>', "the hub's HTTP API").env('FLOTILLA_HUB').default(DEFAULT_HUB))
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .addOption(
      new Option('--token <key>', "a service account's API key (or the hub's admin key), sent as a bearer token").env('FLOTILLA_TOKEN'),
    )
    .addOption(new Option('--ca <file>', 'trust this CA certificate (PEM) for the hub instead of the system store').env('FLOTILLA_CA'));

  for (const register of commands) register(program, io);
  return program;
}

/**
 * Parses `argv` (node and script first, as in `process.argv`), runs the
 * command, and returns the exit code: an ExitCode, or a remote command's own.
 */
export async function run(argv: readonly string[], io: CliIO = processIO()): Promise<ExitCode | number> {
  try {
    // The root's own `--version` only before a command: commander would otherwise take it
    // anywhere on the line, and `agent upgrade --version 0.3.0` would print the CLI's version.
    const version = firstWord(argv).command === undefined;
    await buildProgram(io, await commandsFor(argv), { version }).parseAsync([...argv]);
    return EXIT_OK;
  } catch (err) {
    return report(err, io);
  }
}

function report(err: unknown, io: CliIO): ExitCode | number {
  if (err instanceof CommandExit) return err.code;
  if (err instanceof CommanderError) {
    // Commander has already printed its message (or the help / version).
    return err.exitCode === 0 ? EXIT_OK : EXIT_INVALID_INPUT;
  }
  if (isCliError(err)) {
    io.stderr(err.format());
    return err.exitCode;
  }
  io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_HUB_ERROR;
}

/** How long a failed command may take to flush its output before the process is made to exit. */
const EXIT_GRACE_MS = 1000;

/**
 * Entry point for `flotilla.js`. Long-running commands (server, agent) keep
 * the process alive after this returns; every other command ends when its
 * handles close. A command that failed must end even if something it started
 * is still open (a hub that failed half-way through starting, say), so a
 * failure arms an unref'd timer: it never delays a clean exit, and forces one
 * otherwise.
 */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  // `flotilla get devices | head`: a reader that has seen enough is not an error (no EPIPE stack trace).
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT_OK);
  });
  const code = await run(argv);
  process.exitCode = code;
  if (code !== EXIT_OK) setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
}
