/**
 * The fleet's events as the events page keeps them: newest first, each
 * stored record once (a reconnect resumes after the last id, but a record
 * may still arrive twice), and at most a bounded number, so a page left
 * open for days holds the same memory as one opened a minute ago.
 */
import type { EventRecord } from '../../../../shared/telemetry-api.js';

/** Events kept in memory; older ones are dropped as new ones arrive. */
export const MAX_EVENTS = 1000;

/** `incoming` (in any order) merged into `current` (newest first). */
export function mergeEvents(current: readonly EventRecord[], incoming: readonly EventRecord[], max = MAX_EVENTS): EventRecord[] {
  if (incoming.length === 0) return current as EventRecord[];
  const known = new Set(current.map((event) => event.id));
  const fresh = incoming.filter((event) => !known.has(event.id));
  if (fresh.length === 0) return current as EventRecord[];
  const merged = [...fresh, ...current];
  merged.sort((a, b) => b.id - a.id);
  return merged.slice(0, max);
}

export interface EventFilter {
  /** Part of a device id; `''` for every device. */
  device: string;
  /** One event type exactly; `''` for every type. */
  type: string;
}

export function filterEvents(events: readonly EventRecord[], filter: EventFilter): EventRecord[] {
  const device = filter.device.trim().toLowerCase();
  return events.filter((event) => (!device || event.device.includes(device)) && (!filter.type || event.type === filter.type));
}

/** The types among `events`, sorted, for the type filter's choices. */
export function eventTypes(events: readonly EventRecord[]): string[] {
  return [...new Set(events.map((event) => event.type))].sort();
}

/** How an event type reads at a glance: failures red, work under way amber, the rest plain. */
export function eventTone(type: string): 'bad' | 'busy' | 'plain' {
  if (/fail|error|crash|refus|clash|abort|revert|rolled-?back|unhealthy/.test(type)) return 'bad';
  if (/-started$|^pulling|restart|retry|waiting|updating|stopping/.test(type)) return 'busy';
  return 'plain';
}

/** The time of an event as the table shows it: the time alone for today's, the date too for older ones (the full time is in the cell's title). */
export function formatEventTime(iso: string, now = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const today = date.toDateString() === now.toDateString();
  return today ? date.toLocaleTimeString(undefined, { hour12: false }) : date.toLocaleString(undefined, { hour12: false });
}
