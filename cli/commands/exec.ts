/**
 * `flotilla exec DEVICE APP[/CONTAINER] [-i] [-t] -- CMD ARGS…`: a command in
 * an app's container on a device, through the hub, as `docker exec` runs
 * one: stdout and stderr live, stdin with -i, a terminal with -t, and the
 * command's exit code as the CLI's.
 */
import type { Command } from 'commander';
import type { CliIO } from '../context.js';
import { type PingOptions, pingIntervalOption, sessionTarget } from '../remote/session-options.js';
import { runStdioCommand } from '../remote/stdio-command.js';
import { checkDeviceId, parseAppTarget } from '../remote/targets.js';
import { terminalSize } from '../remote/terminal.js';

interface ExecOptions extends PingOptions {
  stdin?: boolean;
  tty?: boolean;
}

export function registerExec(program: Command, _io: CliIO): void {
  program
    .command('exec')
    .argument('<device>', 'the device')
    .argument('<app>', 'APP or APP/CONTAINER (the container is needed when the app has more than one)')
    .argument('<command...>', "the command and its arguments (after --, so its own options are not taken for flotilla's)")
    .description("run a command in an app's container on a device, like docker exec; exits with the command's exit code")
    .option('-i, --stdin', "pass stdin to the command (its end closes the command's stdin)")
    .option('-t, --tty', 'give the command a terminal: raw keys (Ctrl-C, Ctrl-D) and window size pass through; use with -i')
    .addOption(pingIntervalOption())
    .addHelpText(
      'after',
      `
Examples:
  flotilla exec pi-1 web -- ls -la /data
  echo hello | flotilla exec -i pi-1 web -- cat
  flotilla exec -it pi-1 web/main -- sh

Exit codes: the command's own; 1 when the session failed or broke (the reason on stderr),
2 for a bad request, 3 when the device, app or container does not exist, 4 when refused
(operator role or higher needed).`,
    )
    .action(async (device: string, app: string, argv: string[], options: ExecOptions, command: Command) => {
      const target = parseAppTarget(app);
      const tty = options.tty === true;
      const size = tty ? terminalSize() : undefined;
      await runStdioCommand({
        ...sessionTarget(command),
        device: checkDeviceId(device),
        request: { kind: 'exec', ...target, command: argv, tty, stdin: options.stdin === true, ...size },
        stdin: options.stdin === true,
        ...(options.pingInterval !== undefined ? { pingIntervalMs: options.pingInterval } : {}),
      });
    });
}
