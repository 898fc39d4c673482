/**
 * `flotilla agent swap` (hidden): run by the swap container that an agent
 * running as a container starts to replace itself with a new image
 * (agent/upgrade/start-swap.ts, container-swap.ts). Not for operators: the
 * agent upgrades itself when the hub's desired state names a new version
 * (`flotilla agent upgrade … --image REPO@sha256:…`).
 *
 * The swap follows its file, `<data dir>/upgrade/swap`, which the agent
 * writes before it starts this; the flags only make a swap started by hand
 * (or shown by `docker ps`) say what it does. It exits 0 once the swap is
 * finished or undone, and non-zero on an engine error, after which its
 * restart policy runs it again and it goes on from its file.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { AGENT_VERSION_PATTERN } from '../../shared/schemas/messages.js';
import { DURATION_PATTERN, parseDuration } from '../../shared/schemas/units.js';
import type { CliIO } from '../context.js';
import { parsePositiveInteger } from '../option-parsers.js';

interface SwapOptions {
  container: string;
  to?: string;
  version?: string;
  fromVersion?: string;
  revision?: number;
  healthTimeout: number;
  maxCrashes: number;
}

export function registerAgentSwap(agent: Command, io: CliIO): void {
  agent
    .command('swap', { hidden: true })
    .description("replace the agent's container with a new image, and go back if it does not confirm (run by the agent itself)")
    .addOption(new Option('--container <name>', "the agent's container").env('FLOTILLA_AGENT_CONTAINER').default('flotilla-agent'))
    .option('--to <image>', 'the new image, by digest')
    .addOption(
      new Option('--version <version>', 'the version the new image runs').argParser((value) => {
        if (!new RegExp(AGENT_VERSION_PATTERN).test(value)) throw new InvalidArgumentError(`must match ${AGENT_VERSION_PATTERN}`);
        return value;
      }),
    )
    .option('--from-version <version>', 'the version the agent container runs now')
    .addOption(new Option('--revision <n>', 'the desired agent revision').argParser(parsePositiveInteger))
    .addOption(
      new Option('--health-timeout <duration>', 'how long the new agent has to confirm')
        .argParser((value) => {
          if (!new RegExp(DURATION_PATTERN).test(value)) throw new InvalidArgumentError('must be a duration: 90s, 5m');
          return parseDuration(value);
        })
        .default(300_000, '5m'),
    )
    .addOption(
      new Option('--max-crashes <n>', 'how often the new agent may end without confirming before it is rolled back')
        .argParser(parsePositiveInteger)
        .default(3),
    )
    .action(async (options: SwapOptions, command: Command) => {
      const { dataDir, logLevel } = (command.parent?.opts() ?? {}) as { dataDir: string; logLevel?: string };
      const [{ default: Dockerode }, { runContainerSwap }, { dockerSwapEngine }, { createLogger }] = await Promise.all([
        import('dockerode'),
        import('../../agent/upgrade/container-swap.js'),
        import('../../agent/upgrade/swap-engine.js'),
        import('../../shared/logger.js'),
      ]);
      const logger = createLogger(logLevel ?? 'info', 'flotilla-agent-swap');
      const { to, version, revision } = options;
      const begin =
        to !== undefined && version !== undefined && revision !== undefined
          ? {
              container: options.container,
              to,
              version,
              fromVersion: options.fromVersion ?? '',
              revision,
              healthTimeoutSeconds: Math.ceil(options.healthTimeout / 1000),
              maxCrashes: options.maxCrashes,
            }
          : undefined;
      const outcome = await runContainerSwap({
        engine: dockerSwapEngine(new Dockerode()),
        dataDir,
        logger,
        ...(begin ? { begin } : {}),
        ...(process.env.FLOTILLA_SWAP_HOLD_AT ? { holdAt: process.env.FLOTILLA_SWAP_HOLD_AT.split(',') } : {}),
      });
      io.stdout(`agent swap: ${outcome}\n`);
    });
}
