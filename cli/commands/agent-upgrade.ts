/**
 * The operator's side of agent upgrades (docs/agent-upgrades.md), under `flotilla agent`:
 *
 * - `flotilla agent upgrade (--selector k=v … | --device ID … | --all) --version V [-w]`
 *   sets the agent release the selected devices must run, as a new revision of an
 *   agent target (made if missing); with any rollout flag it goes through a canary
 *   and batches, which `flotilla rollout status agent/NAME` follows. `-w` follows it
 *   and exits by its outcome (agent-upgrade-watch.ts).
 * - `flotilla agent targets [NAME]` lists the targets and how their devices stand.
 * - `flotilla agent delete-target NAME` deletes one (its devices keep the agent they run).
 *
 * Names follow kubectl's own verb-noun subcommands of a namespace (`kubectl config
 * get-contexts`, `delete-context`): every step of an agent upgrade is found under
 * `flotilla agent --help`, and `flotilla delete` stays about apps.
 *
 * Every flag is checked here, before the hub is called, with an error naming the fix
 * (exit 2 like every usage error); the hub checks again, and answers for what only it
 * knows (which releases it holds).
 *
 * These subcommands never run the agent: cli/agent-subcommands.ts lists them so that
 * bin.ts leaves the agent's V8 flags off for them.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEVICE_ID_PATTERN, isDeviceId, isName, NAME_PATTERN } from '../../shared/ids.js';
import type { ApiParams, RolloutPolicy } from '../../shared/index.js';
import { AGENT_VERSION_PATTERN } from '../../shared/schemas/messages.js';
import { DURATION_PATTERN, parseDuration } from '../../shared/schemas/units.js';
import { type HubClient, HubError } from '../client.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { CliError, EXIT_NOT_FOUND, UsageError } from '../errors.js';
import { parseLabelAssignments } from '../labels.js';
import { parsePositiveInteger } from '../option-parsers.js';

export interface UpgradeOptions {
  selector?: string[];
  device?: string[];
  all?: boolean;
  version?: string;
  name?: string;
  image?: string;
  healthTimeout?: string;
  canary?: number | string;
  pauseAfterCanary?: boolean;
  batchSize?: number;
  maxUnavailable?: number;
  failureThreshold?: number;
  deviceTimeout?: string;
  retry?: boolean;
  watch?: boolean;
}

export function registerAgentUpgrade(agent: Command, io: CliIO): void {
  agent
    .command('upgrade')
    .description('set the agent release the selected devices run, all at once or as a rollout (canary, batches, failure threshold)')
    .addOption(
      new Option('-l, --selector <key=value>', 'upgrade devices with this label (repeatable, or k=v,k2=v2; all must match)').argParser(
        collect,
      ),
    )
    .addOption(new Option('--device <id>', 'upgrade this device (repeatable)').argParser(collect))
    .addOption(new Option('--all', 'upgrade every device'))
    .addOption(new Option('--version <version>', 'the agent release to run (e.g. 0.3.0): the hub must hold it (--releases-dir)'))
    .addOption(new Option('--name <name>', 'the agent target to set (default: made from the selection: all, site-lab, device-gw-1)'))
    .addOption(new Option('--image <ref@sha256:digest>', 'the agent image by digest, for devices whose agent runs as a container'))
    .addOption(
      new Option(
        '--health-timeout <duration>',
        'how long the new version has to report healthy before the device rolls back (default 5m)',
      ).argParser(durationArg),
    )
    .addOption(new Option('--canary <n|n%>', 'upgrade this many devices (or this share) first').argParser(parseCanary))
    .addOption(new Option('--pause-after-canary', 'after a healthy canary, wait for `flotilla rollout resume agent/NAME`'))
    .addOption(new Option('--batch-size <n>', 'devices upgraded together after the canary (default 1)').argParser(parsePositiveInteger))
    .addOption(
      new Option('--max-unavailable <n>', 'instead of batches: at most this many devices upgrading at once').argParser(
        parsePositiveInteger,
      ),
    )
    .addOption(
      new Option('--failure-threshold <n>', 'failed devices that pause the rollout and send them back (default 1)').argParser(
        parsePositiveInteger,
      ),
    )
    .addOption(
      new Option(
        '--device-timeout <duration>',
        'a device not running the new version after this long counts as failed (default 10m)',
      ).argParser(durationArg),
    )
    .addOption(new Option('--retry', 'a new revision even when nothing changed: devices where this version rolled back try it again'))
    .addOption(
      new Option(
        '-w, --watch',
        'follow the upgrade: exit 0 once every device runs the version, 1 when a device failed or rolled back, the rollout paused on failures or was aborted',
      ),
    )
    .addHelpText(
      'after',
      [
        '',
        'Any of --canary, --pause-after-canary, --batch-size, --max-unavailable, --failure-threshold or',
        '--device-timeout makes it a rollout: follow it with `flotilla rollout status agent/NAME`, and',
        'pause, resume or abort it there. Without them, every selected device upgrades at once.',
      ].join('\n'),
    )
    .action(async (options: UpgradeOptions, command: Command) => {
      const params = upgradeParams(options);
      const client = hubClient(command, io);
      const format = globalOptions(command).output;
      const result = await client.call('agent.upgrade', params);
      const { upgradeText } = await import('../agent-upgrade-text.js');
      if (options.watch && format === 'json') io.stdout(`${JSON.stringify(result)}\n`);
      else render(io, format, result, () => upgradeText(result));
      await warnUnknownDevices(io, client, params.devices ?? [], result.version);
      if (!options.watch) return;
      const { watchUpgrade } = await import('./agent-upgrade-watch.js');
      await watchUpgrade(io, format, client, result);
    });

  agent
    .command('targets')
    .alias('target')
    .argument('[name]', 'one target only')
    .description('list agent targets: version, revision, selection, and how many of their devices run it, upgrade, failed or rolled back')
    .action(async (name: string | undefined, _options: unknown, command: Command) => {
      const { output } = globalOptions(command);
      const list = await hubClient(command, io).call('agent.targets', {});
      const { targetsTable } = await import('../agent-upgrade-text.js');
      if (name !== undefined) {
        const target = list.items.find((item) => item.name === name);
        if (target === undefined)
          throw new CliError(`agent target "${name}" not found (flotilla agent targets lists them)`, EXIT_NOT_FOUND);
        render(io, output, target, () => targetsTable([target]));
        return;
      }
      if (output === 'table' && list.items.length === 0) io.stderr('No agent targets found.\n');
      else render(io, output, list, () => targetsTable(list.items));
    });

  agent
    .command('delete-target')
    .argument('<name>', 'the agent target')
    .description('delete an agent target: its devices keep the agent they run (or follow another target that selects them)')
    .action(async (name: string, _options: unknown, command: Command) => {
      const result = await hubClient(command, io).call('agent.delete', { name });
      render(io, globalOptions(command).output, result, () => `agent target ${result.name} deleted\n`);
    });
}

/**
 * The `agent.upgrade` params the flags ask for; throws a UsageError naming the
 * fix for a selection that is missing or contradicts itself, a missing or
 * malformed version, name, device id, label or image.
 */
export function upgradeParams(options: UpgradeOptions): ApiParams<'agent.upgrade'> {
  if (options.version === undefined) {
    throw new UsageError('agent upgrade needs the release to run: --version V (e.g. --version 0.3.0)');
  }
  if (!new RegExp(AGENT_VERSION_PATTERN).test(options.version)) {
    throw new UsageError(`invalid --version "${options.version}": a release version as package.json spells it, e.g. 0.3.0 or 0.3.0-rc.1`);
  }
  const selectors = parseLabelAssignments((options.selector ?? []).flatMap((arg) => arg.split(',')));
  const deviceIds = options.device ?? [];
  const hasSelectors = Object.keys(selectors).length > 0;
  if (options.all && (hasSelectors || deviceIds.length > 0)) {
    throw new UsageError('--all selects every device: leave out --selector and --device, or leave out --all');
  }
  if (!options.all && !hasSelectors && deviceIds.length === 0) {
    throw new UsageError('agent upgrade needs the devices to upgrade: --selector KEY=VALUE, --device ID or --all');
  }
  for (const id of deviceIds) {
    if (!isDeviceId(id)) throw new UsageError(`invalid device id "${id}" in --device: must match ${DEVICE_ID_PATTERN}`);
  }
  const devices = [...new Set(deviceIds)];
  if (options.name !== undefined && !isName(options.name)) {
    throw new UsageError(`invalid --name "${options.name}": a target name is a DNS label (${NAME_PATTERN}), e.g. site-lab`);
  }
  if (options.image !== undefined && !/^[^\s@]+@sha256:[0-9a-f]{64}$/.test(options.image)) {
    throw new UsageError(`invalid --image "${options.image}": name the image by digest, REPOSITORY@sha256:<64 hex digits>`);
  }
  const rollout = rolloutPolicy(options);
  return {
    version: options.version,
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.all ? { selectors: {} } : hasSelectors ? { selectors } : {}),
    ...(devices.length > 0 ? { devices } : {}),
    ...(options.image !== undefined ? { image: options.image } : {}),
    ...(rollout !== undefined ? { rollout } : {}),
    ...(options.healthTimeout !== undefined ? { healthTimeout: options.healthTimeout } : {}),
    ...(options.retry ? { retry: true } : {}),
  };
}

/** The rollout the flags ask for, or undefined for "every device at once". */
function rolloutPolicy(options: UpgradeOptions): RolloutPolicy | undefined {
  if (options.batchSize !== undefined && options.maxUnavailable !== undefined) {
    throw new UsageError('--batch-size and --max-unavailable are two ways to pace a rollout (batches, or a sliding window): give one');
  }
  if (options.pauseAfterCanary && (options.canary === undefined || options.canary === 0 || options.canary === '0%')) {
    throw new UsageError('--pause-after-canary needs a canary to pause after: --canary N or --canary N%');
  }
  const policy: RolloutPolicy = {};
  if (options.canary !== undefined) policy.canary = options.canary;
  if (options.pauseAfterCanary) policy.pauseAfterCanary = true;
  if (options.batchSize !== undefined) policy.batchSize = options.batchSize;
  if (options.maxUnavailable !== undefined) policy.maxUnavailable = options.maxUnavailable;
  if (options.failureThreshold !== undefined) policy.failureThreshold = options.failureThreshold;
  if (options.deviceTimeout !== undefined) policy.deviceTimeout = options.deviceTimeout;
  return Object.keys(policy).length > 0 ? policy : undefined;
}

/**
 * A device named with --device that the hub does not know is not refused: the target
 * selects it once it registers (devices are often set up after the fleet's target).
 * The operator still hears of it, since it is as likely a typo.
 */
async function warnUnknownDevices(io: CliIO, client: HubClient, ids: readonly string[], version: string): Promise<void> {
  const known = await Promise.all(
    ids.map((id) =>
      client.call('devices.get', { id }).then(
        () => true,
        // Only the hub's "no such device" says anything; any other failure leaves the warning out, the target being set.
        (err: unknown) => !(err instanceof HubError && err.status === 404),
      ),
    ),
  );
  for (const [i, id] of ids.entries()) {
    if (!known[i]) io.stderr(`warning: device ${id} is not known to the hub yet: it gets agent ${version} when it registers\n`);
  }
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `3` devices, or `10%` of them (the rollout schema's two forms). */
export function parseCanary(value: string): number | string {
  if (/^[0-9]+$/.test(value)) return Number(value);
  if (/^(100|[1-9]?[0-9])%$/.test(value)) return value;
  throw new InvalidArgumentError('expected a number of devices (3) or a share of them from 0% to 100% (10%).');
}

/** A duration as the hub's schema spells it (`90s`, `5m`, `1h`), more than zero; sent as written. */
export function durationArg(value: string): string {
  if (!new RegExp(DURATION_PATTERN).test(value) || parseDuration(value) <= 0) {
    throw new InvalidArgumentError('expected a duration more than zero, such as 90s, 5m or 1h.');
  }
  return value;
}
