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
 * Errors go to stderr as `error: <message>`, with details (spec issues) on
 * indented lines below; stdout carries only results, so `-o json` pipes cleanly.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { registerAgent } from './commands/agent.js';
import { registerApply } from './commands/apply.js';
import { registerCerts } from './commands/certs.js';
import { registerDelete } from './commands/delete.js';
import { registerDescribe } from './commands/describe.js';
import { registerDevice } from './commands/device.js';
import { registerEvents } from './commands/events.js';
import { registerGet } from './commands/get.js';
import { registerLabel } from './commands/label.js';
import { registerLogs } from './commands/logs.js';
import { registerMetrics } from './commands/metrics.js';
import { registerRollback } from './commands/rollback.js';
import { registerRollout } from './commands/rollout.js';
import { registerSecret } from './commands/secret.js';
import { registerServer } from './commands/server.js';
import { registerServiceAccount } from './commands/serviceaccount.js';
import { registerToken } from './commands/token.js';
import { registerTop } from './commands/top.js';
import { type CliIO, processIO } from './context.js';
import { EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_OK, type ExitCode, isCliError } from './errors.js';
import { OUTPUT_FORMATS } from './output.js';

export { EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_NOT_FOUND, EXIT_OK, EXIT_UNAUTHORIZED, type ExitCode } from './errors.js';

export const DEFAULT_HUB = 'http://127.0.0.1:7070';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * The whole command tree. Commander never exits the process itself
 * (`exitOverride`): its usage errors are thrown and mapped to exit code 2 by `run`.
 */
export function buildProgram(io: CliIO = processIO()): Command {
  const program = new Command('flotilla')
    .description('Flotilla: run containers on fleets of small devices, over MQTT')
    .version(version(), '-V, --version')
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

  registerApply(program, io);
  registerGet(program, io);
  registerDescribe(program, io);
  registerDelete(program, io);
  registerLabel(program, io);
  registerSecret(program, io);
  registerRollout(program, io);
  registerRollback(program, io);
  registerLogs(program, io);
  registerEvents(program, io);
  registerTop(program, io);
  registerMetrics(program, io);
  registerServer(program, io);
  registerAgent(program, io);
  registerCerts(program, io);
  registerToken(program, io);
  registerServiceAccount(program, io);
  registerDevice(program, io);
  return program;
}

/** Parses `argv` (node and script first, as in `process.argv`), runs the command, and returns the exit code. */
export async function run(argv: readonly string[], io: CliIO = processIO()): Promise<ExitCode> {
  try {
    await buildProgram(io).parseAsync([...argv]);
    return EXIT_OK;
  } catch (err) {
    return report(err, io);
  }
}

function report(err: unknown, io: CliIO): ExitCode {
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
