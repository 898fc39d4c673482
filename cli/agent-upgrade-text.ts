/**
 * What `flotilla agent upgrade`, `agent targets` and `agent upgrade -w` print for
 * people (commands/agent-upgrade.ts). Apart from the command so that the agent
 * process, which registers the command with the rest of `flotilla agent`, does not
 * load the table code.
 */
import type { AgentTargetView, AgentUpgradeResult } from '../shared/index.js';
import { formatScheduling } from './commands/get.js';
import { formatAge, formatTable } from './output.js';

/** `agent target site-lab: version 0.3.0 (revision 7); rolling out: flotilla rollout status agent/site-lab`. */
export function upgradeText(result: AgentUpgradeResult): string {
  const head = `agent target ${result.name}: version ${result.version} (revision ${result.revision})`;
  if (!result.changed) return `${head} unchanged\n`;
  if (result.rollout !== undefined) return `${head}; rolling out: flotilla rollout status ${result.rollout}\n`;
  return `${head}; the devices it selects upgrade now: flotilla get devices\n`;
}

export function targetsTable(targets: readonly AgentTargetView[], now: number = Date.now()): string {
  return formatTable(
    ['NAME', 'VERSION', 'REVISION', 'SELECTION', 'DEVICES', 'RUNNING', 'UPGRADING', 'FAILED', 'ROLLED-BACK', 'AGE'],
    targets.map((target) => [
      target.name,
      target.version,
      String(target.revision),
      formatScheduling(target.scheduling),
      String(target.devices.matched),
      String(target.devices.running),
      String(target.devices.upgrading),
      String(target.devices.failed),
      String(target.devices.rolledBack),
      formatAge(target.createdAt, now),
    ]),
  );
}

/** `agent target site-lab: 2/5 devices run 0.3.0, 3 upgrading, 0 failed, 0 rolled back`. */
export function targetProgressText(target: AgentTargetView): string {
  const { matched, running, upgrading, failed, rolledBack } = target.devices;
  return `agent target ${target.name}: ${running}/${matched} devices run ${target.version}, ${upgrading} upgrading, ${failed} failed, ${rolledBack} rolled back\n`;
}

/** Every selected device has got somewhere: runs the version, or failed or rolled back (which wait for the operator). */
export function targetSettled(target: AgentTargetView): boolean {
  const { matched, running, upgrading, failed, rolledBack } = target.devices;
  return upgrading === 0 && running + failed + rolledBack >= matched;
}
