/**
 * `flotilla agent upgrade -w`: follows the upgrade it just set and exits by its outcome,
 * as kubectl's rollout status does: 0 only when every device the target selects runs its
 * version; 1 when the watch ends with any device failed or rolled back, the rollout
 * paused on failures or was aborted, or a newer revision of the target took its place,
 * with a line saying so and where to see why (`flotilla events DEVICE`).
 *
 * Without a rollout it reads the target's device counts until every device has got
 * somewhere; with one, it follows the rollout (rollout-watch.ts) until it is complete or
 * aborted.
 */
import type { AgentTargetView, AgentUpgradeResult, RolloutStatus } from '../../shared/index.js';
import type { HubClient } from '../client.js';
import { type CliIO, render } from '../context.js';
import { CliError, EXIT_FAILED, EXIT_NOT_FOUND } from '../errors.js';
import type { OutputFormat } from '../output.js';
import { eventsHint } from './rollout-watch.js';

/** How often the watch without a rollout asks the hub (as a rollout's watch does). */
const WATCH_INTERVAL_MS = 1000;

export async function watchUpgrade(io: CliIO, format: OutputFormat, client: HubClient, result: AgentUpgradeResult): Promise<void> {
  if (result.rollout === undefined) {
    const settled = await watchTarget(io, format, client, result);
    const notRunning = settled.devices.failed + settled.devices.rolledBack;
    if (notRunning > 0) throw upgradeFailed(settled, notRunning, await failedDevices(client, settled));
    return;
  }
  const { watchRollout } = await import('./rollout-watch.js');
  const end = await watchRollout(io, format, client, { kind: 'agent', name: result.name }, result.revision);
  const error = rolloutOutcome(end);
  if (error !== undefined) throw error;
}

/**
 * The error a rollout that ended (complete or aborted) gives `agent upgrade -w`, or
 * undefined when every device in it runs the version.
 */
export function rolloutOutcome(status: RolloutStatus): CliError | undefined {
  const subject = status.app;
  if (status.phase === 'aborted') {
    return new CliError(
      `${subject} revision ${status.revision} was aborted: ${status.reason ?? 'its devices run their previous agent'}`,
      EXIT_FAILED,
    );
  }
  const { failed, reverted, total } = status.counts;
  if (failed + reverted === 0) return undefined;
  const ids = status.devices.filter((d) => d.state === 'failed' || d.state === 'reverted').map((d) => d.id);
  return new CliError(
    `${subject} revision ${status.revision} is complete, but ${failed + reverted} of ${total} devices do not run it: ${failed} failed, ${reverted} sent back`,
    EXIT_FAILED,
    [eventsHint(ids)],
  );
}

function upgradeFailed(target: AgentTargetView, notRunning: number, ids: readonly string[]): CliError {
  const { matched, failed, rolledBack } = target.devices;
  return new CliError(
    `agent target ${target.name}: ${notRunning} of ${matched} devices did not upgrade to ${target.version}: ${failed} failed, ${rolledBack} rolled back`,
    EXIT_FAILED,
    [ids.length > 0 ? eventsHint(ids) : 'see why: flotilla events DEVICE (flotilla get devices marks them FAILED or ROLLED-BACK)'],
  );
}

/** The devices whose upgrade to the target's revision failed or rolled back, as they report it. */
async function failedDevices(client: HubClient, target: AgentTargetView): Promise<string[]> {
  const devices = (await client.call('devices.list', {})).items;
  return devices
    .filter(
      (d) => d.agentUpgrade?.revision === target.revision && (d.agentUpgrade.phase === 'failed' || d.agentUpgrade.phase === 'rolled-back'),
    )
    .map((d) => d.id);
}

/** The target's device counts on every change, until every device has settled; returns the last. */
async function watchTarget(io: CliIO, format: OutputFormat, client: HubClient, result: AgentUpgradeResult): Promise<AgentTargetView> {
  const { targetProgressText, targetSettled } = await import('../agent-upgrade-text.js');
  let last = '';
  for (;;) {
    const target = (await client.call('agent.targets', {})).items.find((item) => item.name === result.name);
    if (target === undefined) throw new CliError(`agent target "${result.name}" is gone (deleted meanwhile?)`, EXIT_NOT_FOUND);
    if (target.revision > result.revision) {
      throw new CliError(
        `agent target ${target.name} has a newer revision ${target.revision} (version ${target.version}) than the revision ${result.revision} this watched`,
        EXIT_FAILED,
        [`see how its devices stand: flotilla agent targets ${target.name}`],
      );
    }
    const text = JSON.stringify(target.devices);
    if (text !== last) {
      last = text;
      if (format === 'json') io.stdout(`${JSON.stringify(target)}\n`);
      else render(io, format, target, () => targetProgressText(target));
    }
    if (targetSettled(target)) return target;
    await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
  }
}
