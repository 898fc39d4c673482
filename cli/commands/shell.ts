/**
 * `flotilla shell DEVICE`: a login shell on the device's host, through the
 * hub. Admin only, and only where the agent was started with
 * --allow-host-shell. A terminal when stdin is one; otherwise the shell
 * reads commands from stdin (`echo uptime | flotilla shell pi-1`).
 */
import type { Command } from 'commander';
import type { CliIO } from '../context.js';
import { type PingOptions, pingIntervalOption, sessionTarget } from '../remote/session-options.js';
import { runStdioCommand } from '../remote/stdio-command.js';
import { checkDeviceId } from '../remote/targets.js';
import { terminalSize } from '../remote/terminal.js';

export function registerShell(program: Command, _io: CliIO): void {
  program
    .command('shell')
    .argument('<device>', 'the device')
    .description("open a shell on a device's host (admin; the agent must run with --allow-host-shell)")
    .addOption(pingIntervalOption())
    .addHelpText(
      'after',
      `
A terminal when stdin is one (Ctrl-C, Ctrl-D and the window size pass through);
otherwise the shell runs what stdin gives it and the CLI exits with its exit code.`,
    )
    .action(async (device: string, options: PingOptions, command: Command) => {
      const tty = process.stdin.isTTY === true;
      const size = tty ? terminalSize() : undefined;
      await runStdioCommand({
        ...sessionTarget(command),
        device: checkDeviceId(device),
        request: { kind: 'shell', tty, ...size },
        stdin: true,
        ...(options.pingInterval !== undefined ? { pingIntervalMs: options.pingInterval } : {}),
      });
    });
}
