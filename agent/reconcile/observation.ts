/**
 * What one tick sees of the device: the one input of both the planner and the
 * state report, so the two never disagree about what runs, how healthy a new
 * version is, or why an update waits. Gathering it is the only I/O of a tick
 * before steps run; the health probes run here, so the planner stays pure.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type DesiredApp, parseDuration } from '../../shared/index.js';
import type { EngineOutage } from '../health/engine-outages.js';
import { probe } from '../health/probe.js';
import { type HealthVerdict, healthVerdict, type ProbeResult } from '../health/verdict.js';
import type { InitContainer, ManagedContainer } from '../runtime/runtime.js';
import { containerHash } from '../runtime/spec-hash.js';
import { awaitedHealthy, type DependencyWaits, runsToCompletion } from './dependencies.js';
import type { UpdateRecords } from './records.js';
import type { ClosedWindow } from './window-hold.js';

export interface Observation {
  /** Containers found by their Flotilla labels. */
  containers: readonly ManagedContainer[];
  /** Images (as written in specs) that are present on the device. */
  imagesPresent: ReadonlySet<string>;
  /** What the agent remembers about updates (a live view: a commit in this tick's batch shows at once). */
  records: UpdateRecords;
  /** Health gate verdicts of running containers whose spec is not committed yet, by container id. */
  health: ReadonlyMap<string, HealthVerdict>;
  /** Images the agent pulled itself: the only ones it ever removes. */
  pulledImages: ReadonlySet<string>;
  /** Apps holding an update lock (a file `updates.lock` in one of their volumes), with its path. */
  locks: ReadonlyMap<string, string>;
  /** Images that do not fit on disk now (size + reserve > free), with the reason. */
  diskShort: ReadonlyMap<string, string>;
  /** Apps whose update window is closed at the time of the look (the device's clock), with when it opens (window-hold.ts). */
  windows: ReadonlyMap<string, ClosedWindow>;
  /** Containers waiting for a dependency before they start (dependencies.ts), by `app/container`; none without `dependsOn`. */
  waits?: DependencyWaits;
  /** Init containers of apps (labelled apart from the app's own, runtime.ts); none where no app has any. */
  inits?: readonly InitContainer[];
  /** The last lines of each init container that exited, by container id, oldest first. */
  initOutput?: ReadonlyMap<string, readonly string[]>;
  /** Init containers still running past their app's health timeout, with that timeout in ms, by container id. */
  overdueInits?: ReadonlyMap<string, number>;
}

/** Like balena's updates.lock: an app creates it in one of its volumes to defer a swap during critical work. */
/** What the planner reads of an observation, with the names containers run under. */
export type PlanContext = Omit<Observation, 'containers'> & {
  /** The Docker name a container of an app runs under (the agent's name prefix applied). */
  primaryName: (app: string, container: string) => string;
};

export const UPDATE_LOCK_FILE = 'updates.lock';

const PROBE_TIMEOUT_MS = 2000;
const DEFAULT_HEALTH_TIMEOUT = '60s';
const DEFAULT_MIN_READY_SECONDS = 10;

/** Before the first look: nothing seen yet. */
export function nothingObserved(records: UpdateRecords, pulledImages: ReadonlySet<string>): Observation {
  return {
    containers: [],
    imagesPresent: new Set(),
    records,
    health: new Map(),
    pulledImages,
    locks: new Map(),
    diskShort: new Map(),
    windows: new Map(),
  };
}

/** Apps whose running containers hold an update lock, with the lock's path on the host. */
export function findUpdateLocks(current: readonly ManagedContainer[]): Map<string, string> {
  const locks = new Map<string, string>();
  for (const container of current) {
    if (container.state !== 'running' || locks.has(container.app)) continue;
    const lock = (container.mountSources ?? []).map((source) => join(source, UPDATE_LOCK_FILE)).find((path) => existsSync(path));
    if (lock) locks.set(container.app, lock);
  }
  return locks;
}

/**
 * Health gate verdicts for containers of the desired spec that is not
 * committed yet (a new version on trial). Older versions are not on trial:
 * once a new one is committed, the stashed or stopping old one is being
 * retired, and judging it would report its expected exit as a health failure.
 * `outages` are the engine's absences: they pause a trial (engine-outages.ts).
 */
export async function judgeCandidates(
  desired: readonly DesiredApp[],
  records: UpdateRecords,
  current: readonly ManagedContainer[],
  now: number,
  outages: readonly EngineOutage[] = [],
): Promise<Map<string, HealthVerdict>> {
  const verdicts = new Map<string, HealthVerdict>();
  for (const app of desired) {
    const committed = records.get(app.name)?.committed?.containers;
    const completes = runsToCompletion(app);
    for (const spec of app.containers) {
      const hash = containerHash(app, spec);
      if (committed?.[spec.name]?.hash === hash) continue;
      for (const container of current.filter((c) => c.app === app.name && c.container === spec.name && c.specHash === hash)) {
        if (container.state === 'created') {
          // Not on trial before it runs; one the engine could not start fails its gate at once, as one that exits at once does.
          if (container.startError !== undefined) {
            verdicts.set(container.id, { status: 'unhealthy', reason: `container ${spec.name} could not start: ${container.startError}` });
          }
          continue;
        }
        const probed = container.state === 'running' ? await probe(spec, container, PROBE_TIMEOUT_MS) : undefined;
        const policy = { ...gatePolicy(app), ...(completes.has(spec.name) ? { runsToCompletion: true } : {}) };
        verdicts.set(container.id, healthVerdict(container, spec, policy, probed, now, outages));
      }
    }
  }
  return verdicts;
}

/**
 * The health check answer of each running container another one waits to see healthy
 * (`dependsOn: healthy`), by container id: http and tcp probed as the health gate probes them,
 * an exec check read from Docker's own health status. Any version counts: the one the
 * dependent waits for is picked by the planner (dependencies.ts).
 */
export async function probeDependencies(
  desired: readonly DesiredApp[],
  records: UpdateRecords,
  current: readonly ManagedContainer[],
): Promise<Map<string, ProbeResult>> {
  const results = new Map<string, ProbeResult>();
  for (const app of desired) {
    for (const name of awaitedHealthy(app)) {
      const desiredSpec = app.containers.find((c) => c.name === name);
      const committed = records.get(app.name)?.committed?.containers[name];
      for (const container of current.filter((c) => c.app === app.name && c.container === name && c.state === 'running')) {
        const spec = committed?.hash === container.specHash ? committed.spec : desiredSpec;
        if (!spec) continue;
        const probed = await probe(spec, container, PROBE_TIMEOUT_MS);
        const docker = container.health === 'healthy';
        results.set(
          container.id,
          probed ?? {
            ok: docker,
            detail: docker ? 'Docker health check passed' : `Docker health check ${container.health ?? 'not run yet'}`,
          },
        );
      }
    }
  }
  return results;
}

/** The update's health timeout: also the longest a container waits for a dependency. */
export function healthTimeoutMs(app: DesiredApp): number {
  return gatePolicy(app).healthTimeoutMs;
}

function gatePolicy(app: DesiredApp) {
  return {
    healthTimeoutMs: parseDuration(app.update?.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT),
    minReadyMs: (app.update?.minReadySeconds ?? DEFAULT_MIN_READY_SECONDS) * 1000,
  };
}
