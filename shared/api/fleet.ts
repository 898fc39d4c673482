/**
 * The fleet stream's rows (`GET /api/v1/devices?follow=true`, Server-Sent
 * Events; broker/fleet/): one per device, everything the console's fleet
 * table shows, so the page needs no second request per device. Imports
 * nothing, so the browser bundle can import this file itself.
 */

/** The events of the fleet stream: the whole fleet first, then what changed (at most once a second). */
export const FLEET_EVENT = { all: 'fleet', changes: 'fleet-changes' } as const;

/** How many samples of each sparkline series a row carries. */
export const FLEET_HISTORY_SAMPLES = 30;

export interface FleetRow {
  id: string;
  online: boolean;
  lastSeen: string | null;
  /** Effective labels (what scheduling matches). */
  labels: Record<string, string>;
  agentVersion: string | null;
  hostname: string | null;
  arch: string | null;
  apps: { desired: number; running: number; failing: number };
  revokedAt?: string;
  idClash?: boolean;
  metrics: { ts: string; cpuPercent?: number; memPercent?: number; diskPercent?: number; temperatureC?: number } | null;
  /** The last (up to) 30 samples, oldest first, for sparklines. */
  history: { cpu: number[]; mem: number[]; disk: number[] };
}

/** Event `fleet`: every device. */
export interface FleetSnapshot {
  items: FleetRow[];
}

/** Event `fleet-changes`: rows that changed since the last event, and the ids of devices no longer known. */
export interface FleetChanges {
  items: FleetRow[];
  removed: string[];
}
