/**
 * Which agent release each device must run, pure: the dispatcher and the agent rollouts feed
 * these functions rows (targets, their rollouts, stored revisions, device reports) and get data.
 *
 * Rules:
 * - A device follows, among the targets whose scheduling selects it, the one with the highest
 *   revision: revisions are one sequence across targets (broker/store/agent-targets.ts), so that
 *   is the target set last. Deleting it lets the device fall back to the next.
 * - The followed target's revision reaches the device through the target's rollout when it has
 *   one at that revision (an older revision, or none, while its turn has not come), else at once.
 * - Revision 0 means "no agent section": the device keeps whatever agent it runs. That is where
 *   a target's first rollout starts from, and where a device in no target stays.
 * - A device's report of the agent, for the rollout machine: it runs the release's version (and
 *   reports no upgrade of this revision) → running; it reports this revision rolled back or
 *   failed → that; anything else → still updating.
 */
import { createHash } from 'node:crypto';
import {
  AGENT_UPGRADE_PHASES,
  type AgentUpgradePhase,
  type AgentUpgradeReport,
  type DesiredAgent,
  type DeviceState,
  type Labels,
  type Scheduling,
} from '../../shared/index.js';
import type { AgentRelease, StoredAgentTarget } from '../store/agent-targets.js';
import type { FleetDeviceRow } from '../store/devices.js';
import { type AppReport, assignedRevision, type Rollout } from './rollout-plan.js';
import { matches } from './scheduling.js';

/** A target name is a DNS label (shared/ids.ts NAME_PATTERN): at most 63 characters. */
const MAX_NAME = 63;
const HASH_CHARS = 8;

/**
 * The name a target gets when the operator gives none: `all` for `selectors: {}`, otherwise the
 * selection spelt as a DNS label (`site=lab` → `site-lab`, device `gw-1` → `device-gw-1`); one too
 * long is cut and ends in a short hash of the whole selection, so two long ones stay apart.
 */
export function defaultTargetName(scheduling: Scheduling): string {
  const selectors = Object.entries(scheduling.selectors ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const devices = [...(scheduling.devices ?? [])].sort();
  if (scheduling.selectors !== undefined && selectors.length === 0 && devices.length === 0) return 'all';
  const parts: string[] = selectors.flat();
  if (devices.length > 0) parts.push(devices.length === 1 ? 'device' : 'devices', ...devices);
  const label =
    parts
      .join('-')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'target';
  if (label.length <= MAX_NAME) return label;
  const hash = createHash('sha256').update(JSON.stringify({ selectors, devices })).digest('hex').slice(0, HASH_CHARS);
  return `${label.slice(0, MAX_NAME - HASH_CHARS - 1).replace(/-+$/, '')}-${hash}`;
}

/** The target a device follows: the highest revision among those that select it. */
export function followedTarget<T extends Pick<StoredAgentTarget, 'scheduling' | 'revision'>>(
  targets: readonly T[],
  deviceId: string,
  labels: Labels,
): T | undefined {
  let best: T | undefined;
  for (const target of targets) {
    if (matches(target.scheduling, deviceId, labels) && (best === undefined || target.revision > best.revision)) best = target;
  }
  return best;
}

/** The agent revision a device following `target` is told to run now (0: none). */
export function assignedAgentRevision(target: Pick<StoredAgentTarget, 'revision'>, rollout: Rollout | undefined, deviceId: string): number {
  if (!rollout || rollout.revision !== target.revision) return target.revision;
  return assignedRevision(rollout, deviceId, rollout.previousRevision);
}

/** A device's state report as the rollout machine reads it for agent revision `revision` of `release`. */
export function agentReport(
  state: DeviceState | null | undefined,
  revision: number,
  release: Pick<AgentRelease, 'version'>,
): AppReport | undefined {
  if (!state) return undefined;
  const upgrade = state.agentUpgrade?.revision === revision ? state.agentUpgrade : undefined;
  if (upgrade?.phase === 'rolled-back' || upgrade?.phase === 'failed') return { revision, phase: upgrade.phase };
  if (upgrade === undefined && state.host.agentVersion === release.version) return { revision, phase: 'running' };
  return undefined;
}

/** The signed document's agent section for a device of architecture `arch`. */
export function desiredAgent(revision: number, release: AgentRelease, arch: string | undefined): DesiredAgent {
  const bundle = arch === undefined ? undefined : release.bundles[arch];
  return {
    version: release.version,
    revision,
    ...(bundle
      ? { bundle: { url: `/releases/${bundle.file}`, sha256: bundle.sha256, bytes: bundle.bytes, unpackedBytes: bundle.unpackedBytes } }
      : {}),
    ...(release.image !== undefined ? { image: release.image } : {}),
    ...(release.healthTimeout !== undefined ? { healthTimeout: release.healthTimeout } : {}),
  };
}

/**
 * What one pass over the fleet plans every device's agent section from: the targets, the rollout
 * of each that has one (by target name), and the release of every revision a device may be told.
 */
export interface AgentPass {
  targets: readonly StoredAgentTarget[];
  rollouts: ReadonlyMap<string, Rollout>;
  releases: ReadonlyMap<number, AgentRelease>;
}

export const EMPTY_AGENT_PASS: AgentPass = { targets: [], rollouts: new Map(), releases: new Map() };

/** The revisions a pass must be able to name: each target's, and every one its rollout assigns. */
export function revisionsToRead(targets: readonly StoredAgentTarget[], rollouts: ReadonlyMap<string, Rollout>): Set<number> {
  const wanted = new Set<number>();
  for (const target of targets) {
    wanted.add(target.revision);
    const rollout = rollouts.get(target.name);
    if (!rollout) continue;
    wanted.add(rollout.previousRevision);
    for (const device of rollout.devices) wanted.add(device.from);
  }
  wanted.delete(0);
  return wanted;
}

/** A device's agent section, or undefined: none (no target selects it, or its assigned revision is 0 or unknown). */
export function agentFor(pass: AgentPass, device: { id: string; labels: Labels; state: DeviceState | null }): DesiredAgent | undefined {
  const target = followedTarget(pass.targets, device.id, device.labels);
  if (!target) return undefined;
  const revision = assignedAgentRevision(target, pass.rollouts.get(target.name), device.id);
  const release = revision === target.revision ? target.release : pass.releases.get(revision);
  if (revision === 0 || !release) return undefined;
  return desiredAgent(revision, release, device.state?.host.arch);
}

/** The phases of an upgrade under way (the device is installing or trying the version). */
const UNDER_WAY: ReadonlySet<AgentUpgradePhase> = new Set(['downloading', 'verifying', 'switching', 'restarting', 'confirming']);

export interface AgentTargetCounts {
  matched: number;
  running: number;
  upgrading: number;
  failed: number;
  rolledBack: number;
}

/**
 * Per target, the devices that follow it (those that have reported: a target set later that
 * also selects a device takes it), and how many of them run its version, are upgrading to its
 * revision, failed it, rolled it back.
 *
 * Failed and rolled back are what the device reports at the target's revision, or, when it
 * reports nothing of it, what the target's rollout (`rollouts`, by target name, at the target's
 * revision) says of it: a device the rollout sent back to its previous revision (after a failure,
 * or an abort) reports no upgrade once it runs that again, and still counts as rolled back.
 */
export function targetCounts(
  targets: readonly StoredAgentTarget[],
  devices: readonly { id: string; labels: Labels; state: DeviceState | null }[],
  rollouts: ReadonlyMap<string, Rollout> = new Map(),
): Map<string, AgentTargetCounts> {
  const counts = new Map(targets.map((t) => [t.name, { matched: 0, running: 0, upgrading: 0, failed: 0, rolledBack: 0 }]));
  for (const device of devices) {
    if (!device.state) continue;
    const target = followedTarget(targets, device.id, device.labels);
    const count = target && counts.get(target.name);
    if (!target || !count) continue;
    count.matched += 1;
    if (device.state.host.agentVersion === target.release.version) count.running += 1;
    const upgrade: AgentUpgradeReport | undefined = device.state.agentUpgrade;
    const reported = upgrade?.revision === target.revision ? upgrade.phase : undefined;
    const rollout = rollouts.get(target.name);
    const said = rollout?.revision === target.revision ? rollout.devices.find((d) => d.id === device.id)?.state : undefined;
    if (reported !== undefined && UNDER_WAY.has(reported)) count.upgrading += 1;
    else if (reported === 'failed' || (reported === undefined && said === 'failed')) count.failed += 1;
    else if (reported === 'rolled-back' || (reported === undefined && said === 'reverted')) count.rolledBack += 1;
  }
  return counts;
}

/** What Prometheus counts of one device: the agent version it reports, and its upgrade's phase if one is reported. */
export interface ReportedAgent {
  version?: string;
  upgradePhase?: AgentUpgradePhase;
}

/** A fleet row's reported agent (its state as stored text); nothing for a device that never reported. */
export function reportedAgent(row: Pick<FleetDeviceRow, 'state'>): ReportedAgent {
  return reportedAgentOf(row.state === null ? null : (JSON.parse(row.state) as DeviceState));
}

/** The agent a device's state report names; nothing for a device that never reported (`null`). */
export function reportedAgentOf(state: DeviceState | null): ReportedAgent {
  if (state === null) return {};
  return {
    ...(state.host?.agentVersion ? { version: state.host.agentVersion } : {}),
    ...(state.agentUpgrade ? { upgradePhase: state.agentUpgrade.phase } : {}),
  };
}

export interface AgentFleetCounts {
  /** Devices per reported agent version, by version. */
  versions: { version: string; devices: number }[];
  /** Devices per reported upgrade phase: every phase, 0 where none, so an alert on `rolled-back` has a series before the first. */
  upgrades: { phase: AgentUpgradePhase; devices: number }[];
}

export function agentFleetCounts(devices: readonly ReportedAgent[]): AgentFleetCounts {
  const versions = new Map<string, number>();
  const phases = new Map<AgentUpgradePhase, number>(AGENT_UPGRADE_PHASES.map((phase) => [phase, 0]));
  for (const { version, upgradePhase } of devices) {
    if (version !== undefined) versions.set(version, (versions.get(version) ?? 0) + 1);
    if (upgradePhase !== undefined) phases.set(upgradePhase, (phases.get(upgradePhase) ?? 0) + 1);
  }
  return {
    versions: [...versions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([version, count]) => ({ version, devices: count })),
    upgrades: [...phases].map(([phase, count]) => ({ phase, devices: count })),
  };
}
