/**
 * `?follow=true` on the logs and events routes: Server-Sent Events carrying
 * the backlog, then every new record as soon as it is committed (see
 * ingest.ts). The backlog query and the subscription happen in one
 * synchronous step, so no record can fall between them. The writer thread
 * commits before the hub hears of it, so a batch committed but not yet
 * announced is in the backlog and then announced: records at or below the
 * backlog's newest id are not sent twice.
 *
 * A follower that stops reading must not grow the hub's memory: past a bound
 * of unsent stream the hub ends it (broker/http/event-stream.ts; the client
 * can reconnect with `afterId`, the id of the last record it got).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { API, type EventRecord, FOLLOW_EVENT, type LogRecord, MAX_QUERY_RECORDS } from '../../shared/index.js';
import type { HubApi } from '../dispatcher/api.js';
import { ApiError } from '../dispatcher/errors.js';
import { isFollow, openEventStream } from '../http/event-stream.js';
import { methodRoute, pathParams, queryParams } from '../http/routes.js';
import type { RawRoute } from '../http/server.js';
import type { TelemetryIngest } from './ingest.js';

/** The same path, query and role as the method each stream follows. */
const LOGS = methodRoute('logs.query');
const EVENTS = methodRoute('events.query');

/**
 * `following(device)` is told when a logs stream of that device opens and
 * returns what to call when it ends (the device sends its lines sooner
 * meanwhile: link-tuning.ts).
 */
export function followRoutes(api: HubApi, ingest: TelemetryIngest, following?: (device: string) => () => void): RawRoute[] {
  return [
    {
      method: LOGS.verb,
      pattern: LOGS.pattern,
      accepts: isFollow,
      role: API['logs.query'].role,
      handle: (req, res, match, url) => {
        refuseUntil(url);
        const params: Record<string, string | number | undefined> = {
          ...queryParams(url.searchParams, LOGS.http.query ?? {}),
          ...pathParams(LOGS, match),
        };
        const backlog = page<LogRecord>((extra) => api.call('logs.query', { ...params, ...extra }).lines, params);
        stream(req, res, FOLLOW_EVENT.logs, backlog, (send) => {
          const stopLogs = ingest.onLogs((records) =>
            send(records.filter((r) => r.device === params.device && (params.app === undefined || r.app === params.app))),
          );
          const stopLive = following?.(String(params.device));
          return () => {
            stopLogs();
            stopLive?.();
          };
        });
      },
    },
    {
      method: EVENTS.verb,
      pattern: EVENTS.pattern,
      accepts: isFollow,
      role: API['events.query'].role,
      handle: (req, res, match, url) => {
        refuseUntil(url);
        const params: Record<string, string | number | undefined> = {
          ...queryParams(url.searchParams, EVENTS.http.query ?? {}),
          ...pathParams(EVENTS, match),
        };
        const backlog = page<EventRecord>((extra) => api.call('events.query', { ...params, ...extra }).events, params);
        stream(req, res, FOLLOW_EVENT.events, backlog, (send) =>
          ingest.onEvents((records) =>
            send(
              records.filter(
                (r) => (params.device === undefined || r.device === params.device) && (params.app === undefined || r.app === params.app),
              ),
            ),
          ),
        );
      },
    },
  ];
}

/** A stream has no end, so an `until` would either be ignored or end it at a time nobody waits for: refuse it. */
function refuseUntil(url: URL): void {
  if (url.searchParams.has('until')) {
    throw new ApiError('invalid_request', 'until cannot be used with follow: a follow stream has no end (drop follow to read up to until)');
  }
}

/** The whole backlog: a `since` window may hold more than one query returns. */
function page<T extends { id: number }>(query: (extra: Record<string, number>) => T[], params: Record<string, unknown>): T[] {
  const all = query({});
  if (params.tail !== undefined) return all;
  let last = all;
  while (last.length === MAX_QUERY_RECORDS) {
    last = query({ afterId: last[last.length - 1]!.id });
    all.push(...last);
  }
  return all;
}

const SLOW_NOTE = 'follower too slow; reconnect with afterId';

/** The backlog first, then each committed record not in it, one event per record. */
function stream<T extends { id: number }>(
  req: IncomingMessage,
  res: ServerResponse,
  event: string,
  backlog: T[],
  subscribe: (send: (records: T[]) => void) => () => void,
): void {
  const events = (records: readonly T[]) => records.map((data) => ({ event, data }));
  const sentUpTo = backlog.at(-1)?.id ?? 0;
  const live = (records: readonly T[]) =>
    events(records[0] !== undefined && records[0].id <= sentUpTo ? records.filter((r) => r.id > sentUpTo) : records);
  openEventStream(req, res, (send) => ({ first: events(backlog), stop: subscribe((records) => send(live(records))) }), SLOW_NOTE);
}
