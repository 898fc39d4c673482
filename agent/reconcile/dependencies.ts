/**
 * Start order (`dependsOn`): which containers of an app wait for another before they start,
 * and why. Pure: what runs, each dependency's health check result and the update records
 * come in as arguments; the reconciler adds how long each wait has lasted (its clock).
 *
 * Invariants:
 * - Only a container whose target version is not running yet waits: a running one is never
 *   stopped because a dependency went unhealthy later (Compose does not either).
 * - A dependency is judged by the version its slot converges to (the candidate during an
 *   update, the committed one after a rollback), so a dependent is swapped in only after
 *   its dependency's new version meets the condition, whatever the update strategy.
 * - An app without `dependsOn` has no waits, and plans exactly as it would without this file.
 */
import { dependenciesOf } from '../../shared/app-dependencies.js';
import type { DependencyCondition, DesiredApp } from '../../shared/index.js';
import type { ProbeResult } from '../health/verdict.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import type { UpdateRecords } from './records.js';
import { targetOf } from './rollback.js';
import { isActive } from './slot.js';

export interface DependencyWait {
  /** The container waited for, and the condition it has not met. */
  dependency: string;
  condition: DependencyCondition;
  /** What the dependency is doing instead (its health check's answer, its exit code). */
  detail: string;
  /** The condition can no longer be met by this version (it completed with a non-zero exit). */
  failed?: boolean;
  /** The wait lasted longer than the update's health timeout (set by the reconciler's clock). */
  timedOut?: boolean;
  /** How long the wait has lasted, as the reconciler counts it. */
  waitedMs?: number;
}

/** Waits of all apps, by `waitKey(app, container)`. */
export type DependencyWaits = ReadonlyMap<string, DependencyWait>;

export function waitKey(app: string, container: string): string {
  return `${app}/${container}`;
}

/** `waiting for db: healthy`, the app's phase message while a container waits. */
export function waitMessage(wait: DependencyWait): string {
  return `waiting for ${wait.dependency}: ${wait.condition}`;
}

/** Why a wait fails the revision's gate, if it does. */
export function waitFailure(container: string, wait: DependencyWait): string | undefined {
  if (wait.failed) return `${container} cannot start: ${wait.dependency} ${wait.detail}, it was to be ${wait.condition}`;
  if (wait.timedOut) {
    const waited = Math.round((wait.waitedMs ?? 0) / 1000);
    return `${container} waited ${waited}s for ${wait.dependency} to be ${wait.condition}: ${wait.detail}`;
  }
  return undefined;
}

/** The names of containers some other container of the app waits to see completed: an exit 0 is their success. */
export function runsToCompletion(app: Pick<DesiredApp, 'containers'>): Set<string> {
  return new Set(
    app.containers.flatMap((c) => dependenciesOf(c).flatMap(([name, condition]) => (condition === 'completed' ? [name] : []))),
  );
}

/** The names of containers some other container of the app waits to see healthy: their health check is run for it. */
export function awaitedHealthy(app: Pick<DesiredApp, 'containers'>): Set<string> {
  return new Set(app.containers.flatMap((c) => dependenciesOf(c).flatMap(([name, condition]) => (condition === 'healthy' ? [name] : []))));
}

/**
 * Each container of `app` that would start now but waits for a dependency, with the first
 * unmet one (in `dependsOn` order). `healthOf` answers a running dependency's health check
 * (its container id), for those depended on as `healthy`.
 */
export function unmetDependencies(
  app: DesiredApp,
  current: readonly ManagedContainer[],
  records: UpdateRecords,
  healthOf: ReadonlyMap<string, ProbeResult>,
): Map<string, DependencyWait> {
  const waits = new Map<string, DependencyWait>();
  const record = records.get(app.name);
  const targetContainer = (name: string): ManagedContainer | undefined | null => {
    const spec = app.containers.find((c) => c.name === name);
    const target = spec && targetOf(app, spec, record);
    if (!target) return null;
    const found = current.filter((c) => c.app === app.name && c.container === name && c.specHash === target.hash);
    return found.find(isActive) ?? found[0];
  };
  for (const spec of app.containers) {
    if (!spec.dependsOn) continue;
    const mine = targetContainer(spec.name);
    // Rolled back with nothing to return to, or already past its start.
    if (mine === null || (mine !== undefined && mine.state !== 'created')) continue;
    for (const [dependency, condition] of dependenciesOf(spec)) {
      const found = targetContainer(dependency);
      if (found === null) continue;
      const unmet = unmetCondition(condition, found, healthOf);
      if (unmet) {
        waits.set(spec.name, { dependency, condition, ...unmet });
        break;
      }
    }
  }
  return waits;
}

function unmetCondition(
  condition: DependencyCondition,
  dependency: ManagedContainer | undefined,
  healthOf: ReadonlyMap<string, ProbeResult>,
): { detail: string; failed?: boolean } | undefined {
  if (!dependency) return { detail: 'is not created yet' };
  const exited = dependency.state === 'exited' || dependency.state === 'dead';
  switch (condition) {
    case 'started':
      return dependency.state === 'running' ? undefined : { detail: `is ${dependency.state}` };
    case 'healthy': {
      if (dependency.state !== 'running') return { detail: `is ${dependency.state}` };
      const health = healthOf.get(dependency.id);
      return health?.ok ? undefined : { detail: health?.detail ?? 'has not answered its health check yet' };
    }
    case 'completed':
      if (!exited) return { detail: `is ${dependency.state}` };
      return dependency.exitCode === 0 ? undefined : { detail: `exited with code ${dependency.exitCode ?? '?'}`, failed: true };
  }
}

/**
 * The reconciler's clock over waits: when each was first seen (per revision), so a wait is
 * bounded by the update's health timeout. In memory: an agent restarted mid-wait counts again.
 */
export class WaitClock {
  private readonly since = new Map<string, number>();

  /** `waits` stamped with how long they lasted, and `timedOut` past `timeoutMs(app)`; forgets waits that ended. */
  stamp(
    waits: ReadonlyMap<string, DependencyWait & { revision: number }>,
    now: number,
    timeoutMs: (app: string) => number,
  ): Map<string, DependencyWait> {
    const stamped = new Map<string, DependencyWait>();
    const seen = new Set<string>();
    for (const [key, { revision, ...wait }] of waits) {
      const clockKey = `${key}@${revision}`;
      seen.add(clockKey);
      const since = this.since.get(clockKey) ?? now;
      this.since.set(clockKey, since);
      const waitedMs = now - since;
      const app = key.slice(0, key.indexOf('/'));
      stamped.set(key, { ...wait, waitedMs, ...(waitedMs >= timeoutMs(app) ? { timedOut: true } : {}) });
    }
    for (const key of [...this.since.keys()]) if (!seen.has(key)) this.since.delete(key);
    return stamped;
  }
}
