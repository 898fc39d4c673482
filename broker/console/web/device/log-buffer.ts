/**
 * The lines a device's log view holds: in the order the hub stored them
 * (`id`), each at most once however the backlog and the live stream overlap,
 * and never more than a bound, so a chatty device cannot grow the page
 * without end.
 */
import type { LogRecord } from '../../../../shared/telemetry-api.js';

/** Lines kept in memory; older ones go first. */
export const MAX_LOG_LINES = 5000;

/** `held` followed by what in `incoming` is newer than its last line, cut to the newest `max`. */
export function appendLines(held: readonly LogRecord[], incoming: readonly LogRecord[], max = MAX_LOG_LINES): LogRecord[] {
  let last = held.at(-1)?.id ?? -1;
  const fresh: LogRecord[] = [];
  for (const line of incoming) {
    if (line.id <= last) continue;
    fresh.push(line);
    last = line.id;
  }
  if (fresh.length === 0) return held as LogRecord[];
  const all = held.concat(fresh);
  return all.length > max ? all.slice(all.length - max) : all;
}

/** Lines whose text, app or container holds `search` (case-insensitive); all of them for an empty search. */
export function filterLines(lines: readonly LogRecord[], search: string): readonly LogRecord[] {
  const needle = search.trim().toLowerCase();
  if (needle === '') return lines;
  return lines.filter((l) => l.line.toLowerCase().includes(needle) || l.app.includes(needle) || l.container.includes(needle));
}

/** `text` cut around each case-insensitive match of `search`, for highlighting: odd pieces are the matches. */
export function splitMatches(text: string, search: string): string[] {
  const needle = search.trim().toLowerCase();
  if (needle === '') return [text];
  const lower = text.toLowerCase();
  const pieces: string[] = [];
  let from = 0;
  for (let at = lower.indexOf(needle); at !== -1; at = lower.indexOf(needle, from)) {
    pieces.push(text.slice(from, at), text.slice(at, at + needle.length));
    from = at + needle.length;
  }
  pieces.push(text.slice(from));
  return pieces;
}

/**
 * What the `Since` box means to the hub: a duration back from now (`10m`,
 * `2h`, `1d`) as it is, a local date and time as RFC 3339; undefined for
 * text that is neither, '' for an empty box (the newest lines).
 */
export function sinceParam(text: string): string | undefined {
  const value = text.trim();
  if (value === '') return '';
  if (/^\d+(s|m|h|d)$/.test(value)) return value;
  // A bare number is read as a year by Date.parse; a time needs a date.
  if (!/\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** What the tab's boxes ask the hub for, each already turned into a parameter by `sinceParam`. */
export interface LogRange {
  since: string;
  until: string;
  app: string;
}

/**
 * The `logs.query` parameters of a range: a start, an end (inclusive, like
 * `docker logs --until`), or both; with no start, the newest `tail` lines
 * (before the end, if there is one), so an empty Since never reads a
 * device's whole history.
 */
export function logRangeParams(range: LogRange, tail: number): { since?: string; until?: string; tail?: number; app?: string } {
  return {
    ...(range.since === '' ? { tail } : { since: range.since }),
    ...(range.until === '' ? {} : { until: range.until }),
    ...(range.app === '' ? {} : { app: range.app }),
  };
}
