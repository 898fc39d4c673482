/**
 * What the hub stored for a device, read back through its HTTP API as an
 * operator's tools do, for tests that count sent against ingested.
 */
import type { EventsResult, LogsResult } from '../../shared/index.js';
import { http } from './http.js';

/** Every stored event's seq, in storage order. */
export async function storedEventSeqs(httpUrl: string, deviceId: string): Promise<number[]> {
  const r = await http<EventsResult>(httpUrl, 'GET', `/api/v1/events?device=${deviceId}&since=30d`);
  if (r.status !== 200) throw new Error(`events query: HTTP ${r.status}`);
  return r.body.events.map((e) => e.seq);
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
