/**
 * `flotilla serviceaccount create|delete` and `flotilla get serviceaccounts` —
 * accounts with an API key and a role (admin, operator, viewer). The key is
 * both the MQTT password (username = account name) and the HTTP bearer token.
 *
 * `serviceaccount create` prints the key alone on stdout, shown only this
 * once (`K=$(flotilla serviceaccount create ci --role operator)`); `-o json|yaml`
 * prints the whole answer.
 */
import { type Command, Option } from 'commander';
import type { ServiceAccountInfo } from '../../shared/index.js';
import { isName, NAME_PATTERN } from '../../shared/index.js';
import { ROLES, type Role } from '../auth-api.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { UsageError } from '../errors.js';
import { formatAge, formatTable } from '../output.js';

export function registerServiceAccount(program: Command, io: CliIO): void {
  const account = program
    .command('serviceaccount')
    .alias('sa')
    .description('service accounts: API keys with a role, for people, CI and dashboards (admin)');

  account
    .command('create')
    .argument('<name>', 'account name (a DNS label: a-z, 0-9, "-")')
    .addOption(new Option('--role <role>', 'what the key may do').choices(ROLES).makeOptionMandatory())
    .description('create an account and print its key (shown only this once)')
    .action(async (name: string, options: { role: Role }, command: Command) => {
      checkName(name);
      const created = await hubClient(command, io).call('serviceaccounts.create', { name, role: options.role });
      render(io, globalOptions(command).output, created, () => `${created.key}\n`);
    });

  account
    .command('delete')
    .argument('<name>', 'account name')
    .description('delete an account: its key stops working and its connections are closed')
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).call('serviceaccounts.delete', { name });
      render(io, globalOptions(command).output, result, () => `serviceaccount/${result.name} deleted\n`);
    });
}

/** `flotilla get serviceaccounts` (added to `get` by get.ts). */
export function registerGetServiceAccounts(get: Command, io: CliIO): void {
  get
    .command('serviceaccounts')
    .aliases(['serviceaccount', 'sa'])
    .description('list service accounts and their roles (never their keys)')
    .action(async (_options: unknown, command: Command) => {
      const list = await hubClient(command, io).call('serviceaccounts.list', {});
      const { output } = globalOptions(command);
      if (output === 'table' && list.items.length === 0) io.stderr('No service accounts found.\n');
      else render(io, output, list, () => serviceAccountsTable(list.items));
    });
}

export function serviceAccountsTable(accounts: readonly ServiceAccountInfo[], now: number = Date.now()): string {
  return formatTable(
    ['NAME', 'ROLE', 'AGE'],
    accounts.map((account) => [account.name, account.role, formatAge(account.createdAt, now)]),
  );
}

/** Refused here rather than by the hub, so a typo costs no round trip (and the rule is in the message). */
function checkName(name: string): void {
  if (!isName(name)) throw new UsageError(`invalid account name "${name}": must match ${NAME_PATTERN} (no dots)`);
}
