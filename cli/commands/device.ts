/**
 * `flotilla device revoke NAME` — for a lost or stolen device: the hub drops
 * its connection at once and refuses its secret (and its client certificate)
 * from then on. Registering it again takes a new token.
 */
import type { Command } from 'commander';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';

export function registerDevice(program: Command, io: CliIO): void {
  const device = program.command('device').description('act on one device (admin)');

  device
    .command('revoke')
    .argument('<name>', 'device id')
    .description('revoke a device: disconnect it now and refuse its credentials from now on')
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).call('devices.revoke', { id: name });
      render(
        io,
        globalOptions(command).output,
        result,
        () => `device/${result.id} revoked (${result.disconnected ? 'disconnected' : 'was not connected'})\n`,
      );
    });
}
