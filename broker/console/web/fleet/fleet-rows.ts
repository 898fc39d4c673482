/**
 * The fleet as the hub streams it (`GET /api/v1/devices?follow=true`): a
 * `fleet` event with every device first, then `fleet-changes` with the rows
 * that changed and the ids that are gone. Applying an event never mutates the
 * map it is given, and rows that did not change keep their identity, so the
 * table re-renders only the rows that did.
 */
import { FLEET_EVENT, type FleetChanges, type FleetRow } from '../../../../shared/api/fleet.js';
import type { SseEvent } from '../../../../shared/sse.js';

export type FleetRows = ReadonlyMap<string, FleetRow>;

/** The fleet after `event`; the same map when the event is not one of the fleet's or cannot be read. */
export function applyFleetEvent(rows: FleetRows, event: SseEvent): FleetRows {
  if (event.event !== FLEET_EVENT.all && event.event !== FLEET_EVENT.changes) return rows;
  let data: Partial<FleetChanges>;
  try {
    data = JSON.parse(event.data) as Partial<FleetChanges>;
  } catch {
    return rows;
  }
  const items = Array.isArray(data.items) ? data.items : [];
  if (event.event === FLEET_EVENT.all) return new Map(items.map((row) => [row.id, row]));
  const next = new Map(rows);
  for (const row of items) next.set(row.id, row);
  if (Array.isArray(data.removed)) for (const id of data.removed) next.delete(String(id));
  return next;
}
