/**
 * One FleetRow from what the hub knows of a device, and what changed between
 * two views of the fleet. Pure: the feed (feed.ts) reads the stores and
 * keeps the previous view.
 */
import type { AppPhase, AppState, FleetChanges, FleetRow, Labels, MetricsSample } from '../../shared/index.js';
import type { DeviceHistory } from './history.js';
import { hostPercents } from './history.js';

/** Phases that mean the app is not running as asked: the desired revision failed, or was rolled back from. */
const FAILING: ReadonlySet<AppPhase> = new Set(['failed', 'rolled-back']);

export interface FleetRowInput {
  id: string;
  online: boolean;
  lastSeen: string | null;
  labels: Labels;
  /** The last reported state's host facts and apps; null before the first report. */
  host: { hostname: string; arch: string; agentVersion: string } | null;
  reported: readonly Pick<AppState, 'name' | 'revision' | 'phase'>[];
  /** The apps of the desired document issued to the device; null when none was. */
  desired: readonly { name: string; revision: number }[] | null;
  latest: MetricsSample | undefined;
  history: Readonly<DeviceHistory> | undefined;
  revokedAt: string | undefined;
  idClash: boolean;
}

export function fleetRow(input: FleetRowInput): FleetRow {
  const { history } = input;
  return {
    id: input.id,
    online: input.online,
    lastSeen: input.lastSeen,
    labels: input.labels,
    agentVersion: input.host?.agentVersion ?? null,
    hostname: input.host?.hostname ?? null,
    arch: input.host?.arch ?? null,
    apps: appCounts(input.desired ?? [], input.reported),
    ...(input.revokedAt !== undefined ? { revokedAt: input.revokedAt } : {}),
    ...(input.idClash ? { idClash: true } : {}),
    metrics: input.latest ? latestFigures(input.latest) : null,
    // Copies: the history rings change in place after this row is sent.
    history: { cpu: history?.cpu.slice() ?? [], mem: history?.mem.slice() ?? [], disk: history?.disk.slice() ?? [] },
  };
}

/**
 * Desired: the apps the device is told to run now. Running: those it reports
 * running at the revision it is told to run. Failing: those it reports in a
 * failure phase, whatever the revision.
 */
export function appCounts(
  desired: readonly { name: string; revision: number }[],
  reported: readonly Pick<AppState, 'name' | 'revision' | 'phase'>[],
): FleetRow['apps'] {
  const byName = new Map(reported.map((app) => [app.name, app]));
  let running = 0;
  let failing = 0;
  for (const app of desired) {
    const state = byName.get(app.name);
    if (!state) continue;
    if (state.phase === 'running' && state.revision === app.revision) running++;
    else if (FAILING.has(state.phase)) failing++;
  }
  return { desired: desired.length, running, failing };
}

function latestFigures(sample: MetricsSample): NonNullable<FleetRow['metrics']> {
  const percents = hostPercents(sample.host);
  return {
    ts: sample.ts,
    cpuPercent: percents.cpu,
    ...(percents.mem !== undefined ? { memPercent: percents.mem } : {}),
    ...(percents.disk !== undefined ? { diskPercent: percents.disk } : {}),
    ...(sample.host.temperatureC !== undefined ? { temperatureC: sample.host.temperatureC } : {}),
  };
}

/**
 * What a follower holding `before` (device id → row and its JSON) needs to
 * hold `after`: the rows whose JSON differs or that are new, and the ids gone.
 */
export function fleetChanges(
  before: ReadonlyMap<string, { json: string }>,
  after: ReadonlyMap<string, { row: FleetRow; json: string }>,
): FleetChanges {
  const items: FleetRow[] = [];
  for (const [id, { row, json }] of after) if (before.get(id)?.json !== json) items.push(row);
  const removed = [...before.keys()].filter((id) => !after.has(id));
  return { items, removed };
}
