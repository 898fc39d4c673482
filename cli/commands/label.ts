/**
 * `flotilla label device NAME k=v [k2=v2 ...] [k-]` — operator labels, which
 * override what the agent reports. Arguments are checked before the hub is asked.
 */
import type { Command } from 'commander';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { parseLabelArgs } from '../labels.js';

export function registerLabel(program: Command, io: CliIO): void {
  const label = program.command('label').description("set or remove a device's labels");

  label
    .command('device')
    .aliases(['devices', 'dev'])
    .argument('<name>', 'device id')
    .argument('<labels...>', 'key=value to set, key- to remove')
    .description('set (key=value) or remove (key-) operator labels on a device')
    .action(async (name: string, args: string[], _options: unknown, command: Command) => {
      const { set, remove } = parseLabelArgs(args);
      const patch = {
        ...(Object.keys(set).length > 0 ? { set } : {}),
        ...(remove.length > 0 ? { remove } : {}),
      };
      const device = await hubClient(command, io).call('devices.label', { id: name, ...patch });
      render(io, globalOptions(command).output, device, () => `device/${device.id} labeled\n`);
      // A hub that cannot override what the agent reports leaves such a label in effect; say so rather than claim success silently.
      for (const key of remove.filter((k) => Object.hasOwn(device.labels, k))) {
        io.stderr(`note: label "${key}" is still in effect (${key}=${device.labels[key]})\n`);
      }
    });
}
