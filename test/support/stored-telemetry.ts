/**
 * What the hub stored for a device, read back through its HTTP API as an
 * operator's tools do, for tests that count sent against ingested.
 */
import type { EventRecord, EventsResult, LogsResult } from '../../shared/index.js';
import { http } from './http.js';

/** A device's stored events since `since` (a duration or RFC 3339 time), in storage order. */
export async function storedEvents(httpUrl: string, deviceId: string, since = '30d'): Promise<EventRecord[]> {
  const r = await http<EventsResult>(httpUrl, 'GET', `/api/v1/events?device=${encodeURIComponent(deviceId)}&since=${since}`);
  if (r.status !== 200) throw new Error(`GET /api/v1/events: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.events;
}

/** Every stored event's seq, in storage order. */
export async function storedEventSeqs(httpUrl: string, deviceId: string): Promise<number[]> {
  return (await storedEvents(httpUrl, deviceId)).map((e) => e.seq);
}

/** Every stored log line's text, in storage order. */
export async function storedLogLines(httpUrl: string, deviceId: string): Promise<string[]> {
  const r = await http<LogsResult>(httpUrl, 'GET', `/api/v1/devices/${deviceId}/logs?since=30d`);
  if (r.status !== 200) throw new Error(`logs query: HTTP ${r.status}`);
  return r.body.lines.map((l) => l.line);
}

/** Values seen more than once. */
export function duplicates<T>(values: readonly T[]): T[] {
  const seen = new Set<T>();
  const twice = new Set<T>();
  for (const v of values) (seen.has(v) ? twice : seen).add(v);
  return [...twice];
}
