/**
 * `flotilla inventory --list | --host DEVICE`: the fleet as an Ansible
 * dynamic inventory (cli/remote/inventory.ts), always JSON. Ansible's `-i`
 * wants an executable file: the `flotilla-inventory` command is this one
 * with `inventory` put in front of its arguments.
 */
import type { Command } from 'commander';
import { type CliIO, globalOptions, hubClient } from '../context.js';
import { UsageError } from '../errors.js';
import { buildInventory, hostVars, proxyCommandArgs } from '../remote/inventory.js';
import { selfCommand } from '../remote/self-command.js';
import { checkDeviceId } from '../remote/targets.js';

interface InventoryOptions {
  list?: boolean;
  host?: string;
}

export function registerInventory(program: Command, io: CliIO): void {
  program
    .command('inventory')
    .description('print the fleet as an Ansible dynamic inventory (JSON): groups by label, online/offline, ssh through the hub')
    .option('--list', 'every device, its groups and host vars (what ansible -i asks for)')
    .option('--host <device>', "one device's host vars")
    .addHelpText(
      'after',
      `
Groups: one per label as key_value (site=lab -> site_lab; characters other than
letters, digits and _ become _), and online / offline. Host vars: flotilla_labels,
flotilla_arch, flotilla_agent_version, flotilla_online, flotilla_last_seen,
ansible_host (the device id) and ansible_ssh_common_args, a ProxyCommand that runs
this flotilla's ssh-proxy with the same --hub and --ca (FLOTILLA_TOKEN is read from
the environment, never written into the inventory).

  export FLOTILLA_HUB=https://hub.example:7443 FLOTILLA_TOKEN=…
  ansible -i "$(command -v flotilla-inventory)" 'site_lab:&online' -u root -m ping`,
    )
    .action(async (options: InventoryOptions, command: Command) => {
      if (options.list === true && options.host !== undefined) throw new UsageError('pass --list or --host DEVICE, not both');
      const { hub, ca } = globalOptions(command);
      const sshArgs = proxyCommandArgs(selfCommand({ hub, ...(ca !== undefined ? { ca } : {}) }));
      const client = hubClient(command, io);
      if (options.host !== undefined) {
        const device = await client.call('devices.get', { id: checkDeviceId(options.host) });
        io.stdout(`${JSON.stringify(hostVars(device, sshArgs), null, 2)}\n`);
        return;
      }
      const { items } = await client.call('devices.list', {});
      io.stdout(`${JSON.stringify(buildInventory(items, sshArgs), null, 2)}\n`);
    });
}
