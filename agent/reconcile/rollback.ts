/**
 * Rollback: an app whose candidate fails its health gate is marked rolled
 * back as a whole, and its containers then converge to the committed version
 * again (the stash restored, or the committed spec recreated), or stop when
 * there is none. A rolled-back revision is not retried until a newer one arrives.
 */
import type { ContainerSpec, DesiredApp } from '../../shared/index.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import { containerHash } from '../runtime/spec-hash.js';
import type { AppRecord } from './records.js';
import { isActive, type SlotPlan, type Target } from './slot.js';
import type { Step } from './steps.js';

/** The desired spec, on trial until committed; after a rollback, the committed spec, or nothing if there was none. */
export function targetOf(app: DesiredApp, spec: ContainerSpec, record: AppRecord | undefined): Target | undefined {
  const committed = record?.committed?.containers[spec.name];
  if (record?.rolledBack?.revision === app.revision) return committed && { hash: committed.hash, spec: committed.spec, candidate: false };
  const hash = containerHash(app, spec);
  return { hash, spec, candidate: committed?.hash !== hash };
}

/** Rolled back with no earlier version to return to: stop the failed one, keep it for `docker logs`. */
export function stopWithoutPrevious(containers: readonly ManagedContainer[]): SlotPlan {
  return {
    steps: containers
      .filter(isActive)
      .map((c) => ({ app: c.app, container: c.container, action: 'stop', id: c.id, reason: 'rolled back: no previous version to run' })),
  };
}

/**
 * An app's gate: one failed candidate rolls the whole app back; otherwise the
 * commits go together once every candidate passed, so a rollback never leaves
 * half an app on the new version.
 */
export function commitOrRollBack(app: DesiredApp, slots: readonly SlotPlan[]): Step[] {
  const failures = slots.flatMap((s) => s.gateFailure ?? []);
  if (failures.length > 0) {
    return [{ app: app.name, container: '*', action: 'rollback', appRevision: app.revision, reason: failures.join('; ') }];
  }
  return slots.some((s) => s.gateOpen) ? [] : slots.flatMap((s) => s.commit ?? []);
}
