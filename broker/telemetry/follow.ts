/**
 * `?follow=true` on the logs and events routes: Server-Sent Events carrying
 * the backlog, then every new record as soon as it is committed (see
 * ingest.ts). The backlog query and the subscription happen in one
 * synchronous step, so no record can fall between them.
 *
 * A follower that stops reading must not grow the hub's memory: beyond
 * MAX_UNSENT_BYTES of unsent stream the hub ends the stream (the client can
 * reconnect with `afterId`, the id of the last record it got).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { API, type EventRecord, FOLLOW_EVENT, type LogRecord, MAX_QUERY_RECORDS } from '../../shared/index.js';
import type { HubApi } from '../dispatcher/api.js';
import { methodRoute, pathParams, queryParams } from '../http/routes.js';
import type { RawRoute } from '../http/server.js';
import type { TelemetryIngest } from './ingest.js';

const KEEPALIVE_MS = 15_000;
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

const isFollow = (url: URL) => ['true', '1', ''].includes(url.searchParams.get('follow') ?? 'no');

/** The same path, query and role as the method each stream follows. */
const LOGS = methodRoute('logs.query');
const EVENTS = methodRoute('events.query');

export function followRoutes(api: HubApi, ingest: TelemetryIngest): RawRoute[] {
  return [
    {
      method: LOGS.verb,
      pattern: LOGS.pattern,
      accepts: isFollow,
      role: API['logs.query'].role,
      handle: (req, res, match, url) => {
        const params: Record<string, string | number | undefined> = {
          ...queryParams(url.searchParams, LOGS.http.query ?? {}),
          ...pathParams(LOGS, match),
        };
        const backlog = page<LogRecord>((extra) => api.call('logs.query', { ...params, ...extra }).lines, params);
        stream(req, res, FOLLOW_EVENT.logs, backlog, (send) =>
          ingest.onLogs((records) =>
            send(records.filter((r) => r.device === params.device && (params.app === undefined || r.app === params.app))),
          ),
        );
      },
    },
    {
      method: EVENTS.verb,
      pattern: EVENTS.pattern,
      accepts: isFollow,
      role: API['events.query'].role,
      handle: (req, res, match, url) => {
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

function stream<T>(
  req: IncomingMessage,
  res: ServerResponse,
  event: string,
  backlog: T[],
  subscribe: (send: (records: T[]) => void) => () => void,
): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const send = (records: T[]) => {
    if (records.length === 0) return;
    res.write(records.map((r) => `event: ${event}\ndata: ${JSON.stringify(r)}\n\n`).join(''));
    if (res.writableLength > MAX_UNSENT_BYTES) {
      res.end(': follower too slow; reconnect with afterId\n\n');
      stop();
    }
  };
  // Tells the client the stream is open even when there is no backlog.
  res.write(': following\n\n');
  send(backlog);
  const unsubscribe = subscribe(send);
  const keepalive = setInterval(() => res.write(': ping\n\n'), KEEPALIVE_MS);
  const stop = () => {
    clearInterval(keepalive);
    unsubscribe();
  };
  req.on('close', stop);
  res.on('close', stop);
}
