/**
 * Image garbage collection, once everything else has converged or when a
 * pull needs the room: remove images the agent pulled that no container uses
 * and that are neither the desired, the committed nor the previous image of
 * any app (init containers' included), nor one the hub asked the device to fetch ahead of a later
 * revision (`prefetch`): that one is what the revision will swap to, and
 * removing it would download it twice. (A held update's images are the
 * desired ones, so they stay too.)
 */
import type { DesiredApp } from '../../shared/index.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import type { PlanContext } from './observation.js';
import type { Step } from './steps.js';

export function collectImages(current: readonly ManagedContainer[], desired: readonly DesiredApp[], ctx: PlanContext): Step[] {
  const keep = new Set(current.map((c) => c.image));
  for (const app of desired) {
    for (const spec of app.containers) keep.add(spec.image);
    // An init container's image: its revision may run it again (initPolicy start, a retry).
    for (const spec of app.initContainers ?? []) keep.add(spec.image);
    for (const { image } of app.prefetch?.images ?? []) keep.add(image);
    const record = ctx.records.get(app.name);
    for (const committed of Object.values(record?.committed?.containers ?? {})) keep.add(committed.spec.image);
    for (const image of record?.previousImages ?? []) keep.add(image);
  }
  return [...ctx.pulledImages]
    .filter((image) => !keep.has(image))
    .map((image) => ({
      action: 'remove-image',
      app: '*',
      container: '*',
      image,
      reason: 'no app needs it (each keeps its current and previous image)',
    }));
}
