/**
 * An app's update window (`spec.update.window`) on the device: a new revision
 * of an app that already runs is pulled at once but swapped in only while its
 * window is open, on the device's own clock and zone (shared/update-window.ts).
 *
 * What is held is the swap of the whole app, not of one container: nothing of
 * the new revision is created, started beside the old one, or removed from
 * the spec, while the window is closed. Never held:
 * - a first install, or an app none of whose containers runs (nothing to interrupt);
 * - a revision the operator forced (`flotilla rollout force`, `forceUpdate`);
 * - a rollback (the revision failed its gate: going back is not an update);
 * - a swap that has begun (a container of the new revision exists): it
 *   started inside the window and finishes, so an app is never left half
 *   on each version until the next window.
 * kill-then-download stops the running version before it pulls, so it cannot
 * pull ahead: it pulls once the window opens.
 */
import { type DesiredApp, describeWindow, windowState } from '../../shared/index.js';
import type { ManagedContainer } from '../runtime/runtime.js';
import { containerHash } from '../runtime/spec-hash.js';
import type { UpdateRecords } from './records.js';
import { isActive } from './slot.js';

/** An app's update window that is closed now. */
export interface ClosedWindow {
  /** `mon-fri 02:00–04:00 Europe/Berlin`: the window, with the zone it is read in. */
  window: string;
  /** When it next opens. */
  opensAt: Date | undefined;
}

/** What deciding a hold reads of an observation. */
export interface WindowView {
  records: UpdateRecords;
  /** Apps whose update window is closed now, by name. */
  windows: ReadonlyMap<string, ClosedWindow>;
}

/** The desired apps whose update window is closed at `now` (the device's clock). */
export function closedWindows(desired: readonly DesiredApp[], now: number): Map<string, ClosedWindow> {
  const closed = new Map<string, ClosedWindow>();
  for (const app of desired) {
    const window = app.update?.window;
    if (!window) continue;
    const state = windowState(window, new Date(now));
    if (!state.open) closed.set(app.name, { window: describeWindow(window), opensAt: state.opensAt });
  }
  return closed;
}

/** The closed window the app's update waits for, or undefined when nothing of it is held (the cases in the header). */
export function waitsForWindow(app: DesiredApp, current: readonly ManagedContainer[], view: WindowView): ClosedWindow | undefined {
  const closed = view.windows.get(app.name);
  if (!closed || app.forceUpdate) return undefined;
  const record = view.records.get(app.name);
  if (record?.rolledBack?.revision === app.revision) return undefined;
  const wanted = new Map(app.containers.map((spec) => [spec.name, containerHash(app, spec)]));
  // The containers this revision changes: those not committed as they are now.
  const changed = new Map([...wanted].filter(([name, hash]) => record?.committed?.containers[name]?.hash !== hash));
  const mine = current.filter((c) => c.app === app.name);
  const dropped = mine.some((c) => !wanted.has(c.container));
  if (changed.size === 0 && !dropped) return undefined;
  if (mine.some((c) => changed.get(c.container) === c.specHash)) return undefined;
  if (!mine.some(isActive)) return undefined;
  return closed;
}

/** `revision 7 waits for its update window mon-fri 02:00–04:00 Europe/Berlin (opens 2026-12-07T01:00:00Z)`. */
export function windowMessage(app: DesiredApp, closed: ClosedWindow): string {
  const opens = closed.opensAt ? ` (opens ${closed.opensAt.toISOString().replace(/\.\d{3}Z$/, 'Z')})` : '';
  const noPrefetch =
    app.update?.strategy === 'kill-then-download'
      ? '; kill-then-download stops the running version before it pulls, so it pulls only then'
      : '';
  return `revision ${app.revision} waits for its update window ${closed.window}${opens}${noPrefetch}`;
}

/** The earliest instant one of these windows opens, if any. */
export function nextOpening(windows: Iterable<ClosedWindow>): number | undefined {
  const times = [...windows].flatMap((w) => (w.opensAt ? [w.opensAt.getTime()] : []));
  return times.length > 0 ? Math.min(...times) : undefined;
}
