/**
 * Whether a new version has passed its health gate: a pure decision from
 * what Docker reports, what the agent's own probe saw, and how long the
 * container has been running.
 *
 * A container another one waits to see completed (`dependsOn: completed`) passes by exiting 0.
 * Otherwise the gate, in order of preference: the spec's `healthcheck` (http or tcp,
 * probed by the agent; exec runs as Docker's HEALTHCHECK), else the image's
 * own Docker HEALTHCHECK, else "running without a restart for minReadySeconds".
 * Time the engine was away does not count, and an exit during its absence
 * is not the container's failure (engine-outages.ts).
 */
import type { ContainerSpec } from '../../shared/index.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import { awayDuring, type EngineOutage, outageAt } from './engine-outages.js';

export type HealthStatus = 'pending' | 'healthy' | 'unhealthy';

export interface HealthVerdict {
  status: HealthStatus;
  reason: string;
  /** Pending because the engine stopped it (it went away): the container is to be started again, not judged. */
  stoppedByEngine?: true;
}

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

export interface GatePolicy {
  healthTimeoutMs: number;
  minReadyMs: number;
  /** Another container of the app waits for this one to complete (`dependsOn: completed`): an exit 0 is its success. */
  runsToCompletion?: boolean;
}

export function healthVerdict(
  container: ManagedContainer,
  spec: ContainerSpec,
  policy: GatePolicy,
  probe: ProbeResult | undefined,
  now: number,
  outages: readonly EngineOutage[] = [],
): HealthVerdict {
  if (container.state === 'exited' || container.state === 'dead') {
    const outage = container.finishedAt === undefined ? undefined : outageAt(outages, Date.parse(container.finishedAt));
    if (outage) {
      const since = new Date(outage.from).toISOString();
      return {
        status: 'pending',
        reason: `container ${spec.name} was stopped while the engine went away (after ${since}); its trial resumes when it runs again`,
        stoppedByEngine: true,
      };
    }
    if (policy.runsToCompletion && container.exitCode === 0)
      return { status: 'healthy', reason: `container ${spec.name} completed (exit code 0)` };
    return { status: 'unhealthy', reason: `container ${spec.name} exited with code ${container.exitCode ?? '?'}` };
  }
  if (container.state === 'restarting' || container.restartCount > 0) {
    return { status: 'unhealthy', reason: `container ${spec.name} restarted ${container.restartCount} time(s)` };
  }
  if (container.state !== 'running' || container.startedAt === undefined) return { status: 'pending', reason: 'not running yet' };

  const started = Date.parse(container.startedAt);
  const elapsed = Math.max(0, now - started - awayDuring(outages, started, now));
  const timedOut = elapsed >= policy.healthTimeoutMs;
  const waited = `${Math.round(elapsed / 1000)}s of ${Math.round(policy.healthTimeoutMs / 1000)}s`;

  if (policy.runsToCompletion) {
    return timedOut
      ? { status: 'unhealthy', reason: `container ${spec.name} still runs after ${waited}: it was to complete` }
      : { status: 'pending', reason: `waiting for container ${spec.name} to complete (${waited})` };
  }
  if (spec.healthcheck?.http !== undefined || spec.healthcheck?.tcp !== undefined) {
    if (probe?.ok) return { status: 'healthy', reason: probe.detail };
    const detail = probe?.detail ?? 'not probed yet';
    return timedOut
      ? { status: 'unhealthy', reason: `health check failed for ${waited}: ${detail}` }
      : { status: 'pending', reason: `waiting for health check (${waited}): ${detail}` };
  }
  if (container.health !== undefined) {
    if (container.health === 'healthy') return { status: 'healthy', reason: 'Docker health check passed' };
    if (container.health === 'unhealthy')
      return { status: 'unhealthy', reason: `container ${spec.name} reported unhealthy by its Docker health check` };
    return timedOut
      ? { status: 'unhealthy', reason: `Docker health check still "${container.health}" after ${waited}` }
      : { status: 'pending', reason: `waiting for Docker health check (${waited})` };
  }
  if (elapsed >= policy.minReadyMs) return { status: 'healthy', reason: `running for ${Math.round(elapsed / 1000)}s without a restart` };
  return {
    status: 'pending',
    reason: `running for ${Math.round(elapsed / 1000)}s of ${Math.round(policy.minReadyMs / 1000)}s without a restart`,
  };
}
