/**
 * Which devices the fleet table shows and in what order: the label selector
 * and the search text filter, a column sorts. Pure, so the view only wires it
 * to the address and the stream.
 */
import type { FleetRow } from '../../../../shared/api/fleet.js';
import { type LabelSelector, LabelSelectorError, matchesLabelSelector, parseLabelSelector } from '../../../../shared/label-selector.js';

export type SortKey = 'id' | 'status' | 'lastSeen' | 'cpu' | 'memory' | 'disk' | 'temperature';
export const SORT_KEYS: readonly SortKey[] = ['id', 'status', 'lastSeen', 'cpu', 'memory', 'disk', 'temperature'];

export interface SortOrder {
  key: SortKey;
  descending: boolean;
}

/** The first click on a column: names and status A→Z, times and figures the highest (newest) first. */
export function firstOrder(key: SortKey): SortOrder {
  return { key, descending: key !== 'id' && key !== 'status' };
}

/** `cpu` ascending, `-cpu` descending: how an order is kept in the address. */
export function parseSortOrder(text: string | null): SortOrder {
  const descending = text?.startsWith('-') ?? false;
  const key = (descending ? text?.slice(1) : text) as SortKey;
  return SORT_KEYS.includes(key) ? { key, descending } : { key: 'id', descending: false };
}

export function formatSortOrder(order: SortOrder): string {
  return `${order.descending ? '-' : ''}${order.key}`;
}

export interface FleetFilter {
  /** Whether the device is shown. */
  matches(row: FleetRow): boolean;
  /** Why the label selector could not be read; the table is then filtered by the search text only. */
  selectorError?: string;
}

export function fleetFilter(selectorText: string, searchText: string): FleetFilter {
  let selector: LabelSelector = [];
  let selectorError: string | undefined;
  try {
    selector = parseLabelSelector(selectorText);
  } catch (err) {
    if (!(err instanceof LabelSelectorError)) throw err;
    selectorError = err.message;
  }
  const words = searchText.toLowerCase().split(/\s+/).filter(Boolean);
  return {
    matches: (row) =>
      matchesLabelSelector(selector, row.labels) && (words.length === 0 || words.every((word) => searchable(row).includes(word))),
    ...(selectorError ? { selectorError } : {}),
  };
}

/** The text a search looks in: id, hostname and labels as `k=v`, lower case; cached per row object. */
const searchTexts = new WeakMap<FleetRow, string>();
function searchable(row: FleetRow): string {
  let text = searchTexts.get(row);
  if (text === undefined) {
    const labels = Object.entries(row.labels).map(([key, value]) => `${key}=${value}`);
    text = [row.id, row.hostname ?? '', ...labels].join('\n').toLowerCase();
    searchTexts.set(row, text);
  }
  return text;
}

/** Online, offline, id clash, revoked: healthy first when ascending. */
export function statusRank(row: FleetRow): number {
  if (row.revokedAt) return 3;
  if (row.idClash) return 2;
  return row.online ? 0 : 1;
}

function sortValue(row: FleetRow, key: SortKey): number | string | undefined {
  switch (key) {
    case 'id':
      return row.id;
    case 'status':
      return statusRank(row);
    case 'lastSeen':
      return row.lastSeen ? Date.parse(row.lastSeen) : undefined;
    case 'cpu':
      return row.metrics?.cpuPercent;
    case 'memory':
      return row.metrics?.memPercent;
    case 'disk':
      return row.metrics?.diskPercent;
    case 'temperature':
      return row.metrics?.temperatureC;
  }
}

/**
 * The rows in `order`. Devices without the value (never seen, no sensor)
 * come last either way, and ties keep id order, so live updates never
 * shuffle equal rows.
 */
export function sortFleet(rows: Iterable<FleetRow>, order: SortOrder): FleetRow[] {
  const direction = order.descending ? -1 : 1;
  const keyed = [...rows].map((row) => ({ row, value: sortValue(row, order.key) }));
  keyed.sort((a, b) => {
    if (a.value !== b.value) {
      if (a.value === undefined || Number.isNaN(a.value)) return 1;
      if (b.value === undefined || Number.isNaN(b.value)) return -1;
      return (a.value < b.value ? -1 : 1) * direction;
    }
    return a.row.id < b.row.id ? -1 : a.row.id > b.row.id ? 1 : 0;
  });
  return keyed.map(({ row }) => row);
}

export interface FleetCounts {
  devices: number;
  online: number;
  shown: number;
}

export function countFleet(rows: Iterable<FleetRow>, shown: number): FleetCounts {
  let devices = 0;
  let online = 0;
  for (const row of rows) {
    devices++;
    if (row.online) online++;
  }
  return { devices, online, shown };
}
