/**
 * Per-app phase as operators see it, derived (purely) from what runs, what
 * should run, and what the agent is doing or last failed to do. A new revision
 * held for its update window (window-hold.ts) says when the window opens
 * (`heldUntil`) while it waits, pulling ahead or not, so a staged rollout at
 * the hub counts its device's timeout from then.
 */
import type { AppPhase, AppState, DesiredApp } from '../../shared/index.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import { containerHash } from '../runtime/spec-hash.js';
import { runsToCompletion, waitKey, waitMessage } from './dependencies.js';
import { runningInit } from './init-plan.js';
import type { Observation } from './observation.js';
import { waitsForWindow, windowMessage } from './window-hold.js';

/** What the report reads of an observation, with what the agent is doing or last failed to do. */
export type Activity = Pick<Observation, 'records' | 'health'> &
  Partial<Pick<Observation, 'locks' | 'diskShort' | 'windows' | 'waits' | 'inits'>> & {
    /** Images being pulled right now. */
    pulling: ReadonlySet<string>;
    /** How an image's download goes (`12.3 MiB of 48.0 MiB at 250.0 KiB/s`), when that is known. */
    progress?: (image: string) => string | undefined;
    /** Last failure per app, cleared when a step for that app succeeds. */
    failures: ReadonlyMap<string, string>;
  };

export function appStates(
  desiredOrUnknown: readonly DesiredApp[] | undefined,
  current: readonly ManagedContainer[],
  activity: Activity,
): AppState[] {
  const desired = desiredOrUnknown ?? [];
  const states: AppState[] = desired.map((app) => {
    const containers = current.filter((c) => c.app === app.name);
    const { phase, message, heldUntil } = phaseOf(app, containers, activity);
    return {
      name: app.name,
      revision: app.revision,
      phase,
      ...(message ? { message } : {}),
      ...(heldUntil ? { heldUntil } : {}),
      containers: containers.map(toContainerState),
    };
  });
  // Apps still on the device but no longer desired are reported while they go;
  // before any desired state is known they are simply reported as found.
  const desiredNames = new Set(desired.map((a) => a.name));
  const leaving = [...new Set(current.filter((c) => !desiredNames.has(c.app)).map((c) => c.app))].sort();
  for (const name of leaving) {
    const containers = current.filter((c) => c.app === name);
    states.push({
      name,
      revision: Math.max(...containers.map((c) => c.appRevision)),
      phase: desiredOrUnknown === undefined ? (containers.every((c) => c.state === 'running') ? 'running' : 'pending') : 'stopping',
      ...(activity.failures.get(name) ? { message: activity.failures.get(name)! } : {}),
      containers: containers.map(toContainerState),
    });
  }
  return states;
}

/**
 * While the engine cannot be reached nothing about the apps is known: each
 * is reported `unknown` since the first failed look, with the containers it
 * had then, so neither an operator nor a rollout trusts a stale `running`.
 */
export function unreachableStates(lastSeen: readonly AppState[], since: string, error: string): AppState[] {
  return lastSeen.map((state) => ({
    ...state,
    phase: 'unknown',
    message: `${error} (since ${since}); last seen ${state.phase}`,
    unknownSince: since,
  }));
}

function phaseOf(
  app: DesiredApp,
  containers: readonly ManagedContainer[],
  activity: Activity,
): { phase: AppPhase; message?: string; heldUntil?: string } {
  const record = activity.records.get(app.name);
  if (record?.rolledBack?.revision === app.revision) {
    const previous = record.committed ? `revision ${record.committed.revision} runs again` : 'no previous version to run';
    return { phase: 'rolled-back', message: `revision ${app.revision} failed its health gate (${record.rolledBack.reason}); ${previous}` };
  }
  const current = app.containers.map((spec) => {
    const hash = containerHash(app, spec);
    const container = containers.find((c) => c.container === spec.name && c.specHash === hash);
    const verdict = container && record?.committed?.containers[spec.name]?.hash !== hash ? activity.health.get(container.id) : undefined;
    return { spec, container, verdict };
  });
  const failure = activity.failures.get(app.name);
  if (failure) return { phase: 'failed', message: failure };
  const noRoom = current.find(({ spec, container }) => container === undefined && activity.diskShort?.has(spec.image));
  if (noRoom) return { phase: 'failed', message: `cannot pull ${noRoom.spec.image}: ${activity.diskShort?.get(noRoom.spec.image)}` };
  // A candidate the engine stopped as it went away is still on trial, not failed.
  const onTrial = current.find(
    ({ container, verdict }) =>
      (container?.state === 'running' || verdict?.stoppedByEngine) && verdict !== undefined && verdict.status !== 'healthy',
  );
  // Held for its window, a revision that only drops a container runs all it wants, but is not there yet.
  const closed = activity.windows && waitsForWindow(app, containers, { records: activity.records, windows: activity.windows });
  const held = closed?.opensAt ? { heldUntil: closed.opensAt.toISOString() } : {};
  // A container another waits to see completed is done once it exited 0, not stopped.
  const completes = runsToCompletion(app);
  const done = (name: string, container: ManagedContainer | undefined) =>
    container?.state === 'running' || (completes.has(name) && container?.state === 'exited' && container.exitCode === 0);
  if (current.every(({ spec, container }) => done(spec.name, container)) && !onTrial && !closed) return { phase: 'running' };
  const init =
    activity.inits &&
    runningInit(
      app,
      activity.inits.filter((c) => c.app === app.name),
    );
  if (init) return { phase: 'starting', message: init };
  const wait = current.map(({ spec }) => activity.waits?.get(waitKey(app.name, spec.name))).find((w) => w !== undefined);
  if (wait) return { phase: 'starting', message: waitMessage(wait) };
  if (onTrial?.verdict?.status === 'pending') return { phase: 'starting', message: `${onTrial.spec.name}: ${onTrial.verdict.reason}` };
  for (const { spec, container } of current) {
    if (!container || done(spec.name, container)) continue;
    if (container.state === 'restarting') {
      return {
        phase: 'failed',
        message: `container ${spec.name} is restarting (exit code ${container.exitCode ?? '?'}, ${container.restartCount} restarts)`,
      };
    }
    if (container.state === 'exited' || container.state === 'dead') {
      return { phase: 'failed', message: `container ${spec.name} exited with code ${container.exitCode ?? '?'}` };
    }
  }
  const pulling = current.find(({ spec }) => activity.pulling.has(spec.image));
  if (pulling) {
    const progress = activity.progress?.(pulling.spec.image);
    return { phase: 'pulling', message: `pulling ${pulling.spec.image}${progress ? `: ${progress}` : ''}`, ...held };
  }
  const lock = activity.locks?.get(app.name);
  if (lock && !app.forceUpdate && current.some(({ container }) => container === undefined)) {
    return { phase: 'pending', message: `revision ${app.revision} is waiting for the app to release its update lock ${lock}`, ...held };
  }
  if (closed) return { phase: 'pending', message: windowMessage(app, closed), ...held };
  if (current.some(({ container }) => container !== undefined)) return { phase: 'starting' };
  return { phase: 'pending' };
}

function toContainerState(c: ManagedContainer): AppState['containers'][number] {
  return {
    name: c.container,
    id: c.id,
    image: c.image,
    state: c.state,
    status: c.status,
    restartCount: c.restartCount,
    ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
    ...(c.startedAt ? { startedAt: c.startedAt } : {}),
  };
}
