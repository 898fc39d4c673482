/**
 * How a device's own agent reads for people: the VERSION cell of `get devices`
 * and the Agent section of `describe device`.
 *
 * The version shown is always the one the agent reported running
 * (`host.agentVersion`); the marker beside it comes only from the device's own
 * upgrade report (`agentUpgrade`), never from what the hub wants, so a marker
 * means the device said so. A device told to run another version that has not
 * reported about it yet (offline, say) shows no marker: `describe device`
 * shows the desired version beside the running one.
 */
import type { AgentUpgradeReport } from '../shared/schemas/messages.js';
import { formatBytes } from '../shared/schemas/units.js';
import type { Device } from './client.js';
import { formatAge } from './output.js';

/** The phases in which the agent is still on its way to `version`. */
const UNDER_WAY: ReadonlySet<AgentUpgradeReport['phase']> = new Set(['downloading', 'verifying', 'switching', 'restarting', 'confirming']);

export type AgentUpgradeMarker = 'UPGRADING' | 'FAILED' | 'ROLLED-BACK';

export function upgradeMarker(report: AgentUpgradeReport): AgentUpgradeMarker {
  if (UNDER_WAY.has(report.phase)) return 'UPGRADING';
  return report.phase === 'failed' ? 'FAILED' : 'ROLLED-BACK';
}

/**
 * `0.2.0`; `0.2.0 → 0.3.0 UPGRADING` (while `confirming` the new version already
 * runs: `0.3.0 UPGRADING`); `0.2.0 FAILED 0.3.0`; `0.2.0 ROLLED-BACK 0.3.0`;
 * `-` before the agent's first report. The upgrading form puts the target
 * after an arrow and the others after the marker, so a glance tells "going
 * to" from "did not get to".
 */
export function agentVersionCell(device: Pick<Device, 'host' | 'agentUpgrade'>): string {
  const running = device.host?.agentVersion ?? '-';
  const report = device.agentUpgrade;
  if (report === undefined) return running;
  const marker = upgradeMarker(report);
  if (marker !== 'UPGRADING') return `${running} ${marker} ${report.version}`;
  return running === report.version ? `${running} ${marker}` : `${running} → ${report.version} ${marker}`;
}

/** `12.0 MiB of 41.0 MiB (29%)`, or what is known of it. */
export function downloadProgress(report: Pick<AgentUpgradeReport, 'bytes' | 'total'>): string | undefined {
  const { bytes, total } = report;
  if (bytes === undefined) return undefined;
  if (total === undefined || total === 0) return formatBytes(bytes);
  return `${formatBytes(bytes)} of ${formatBytes(total)} (${Math.floor((100 * Math.min(bytes, total)) / total)}%)`;
}

/**
 * The `describe device` fields of its Agent Upgrade section: what runs, what the
 * hub asks for, and the device's last word on the upgrade between them.
 */
export function agentUpgradeFields(
  device: Pick<Device, 'host' | 'agentUpgrade' | 'desiredAgentVersion'>,
  now: number = Date.now(),
): [string, string][] {
  const running = device.host?.agentVersion;
  const fields: [string, string][] = [
    ['Running', running ?? '<not reported yet>'],
    ['Desired', device.desiredAgentVersion ?? '<none> (keeps the version it runs)'],
  ];
  const report = device.agentUpgrade;
  if (report === undefined) {
    if (device.desiredAgentVersion !== undefined && device.desiredAgentVersion !== running) {
      fields.push(['Phase', '<not reported yet> (the device has not said it started)']);
    }
    return fields;
  }
  fields.push(['Phase', phaseText(report)]);
  fields.push(['Since', `${report.since} (${formatAge(report.since, now)} ago)`]);
  const progress = downloadProgress(report);
  if (progress !== undefined) fields.push(['Progress', progress]);
  if (report.message !== undefined) fields.push(['Message', report.message]);
  return fields;
}

/**
 * `downloading 0.3.0 (revision 7): UPGRADING`; `failed 0.3.0 (revision 7)`. The marker
 * is added only where it says more than the phase: that a phase under way belongs to an
 * upgrade (FAILED and ROLLED-BACK would only repeat it).
 */
function phaseText(report: AgentUpgradeReport): string {
  const text = `${report.phase} ${report.version} (revision ${report.revision})`;
  const marker = upgradeMarker(report);
  return marker === 'UPGRADING' ? `${text}: ${marker}` : text;
}
