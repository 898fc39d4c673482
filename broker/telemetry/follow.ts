/**
 * `?follow=true` on the logs and events routes: Server-Sent Events carrying
 * the backlog, then every new record as soon as it is committed (see
 * ingest.ts), on this hub or, for a replica, on any replica
 * (live-records.ts). The subscription is in place before the backlog query,
 * so no record can fall between them. A batch is committed before the hub
 * hears of it, so one committed but not yet announced is in the backlog and
 * then announced: records at or below the backlog's newest id are not sent
 * twice. Across replicas ids follow commit order only per device (each
 * replica commits its own devices' records), so there the bound is the
 * device's newest id in the backlog.
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
import type { LiveRecords } from './live-records.js';
import { keepsEvent, keepsLine } from './log-filter.js';

/** The same path, query and role as the method each stream follows. */
const LOGS = methodRoute('logs.query');
const EVENTS = methodRoute('events.query');

/**
 * `following(device)` is told when a logs stream of that device opens and
 * returns what to call when it ends (the device sends its lines sooner
 * meanwhile: link-tuning.ts).
 */
export function followRoutes(api: HubApi, live: LiveRecords, following?: (device: string) => () => void): RawRoute[] {
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
        const backlog = () => page<LogRecord>(async (extra) => (await api.call('logs.query', { ...params, ...extra })).lines, params);
        const device = String(params.device);
        // The backlog's query refuses app and job together before the stream opens; the live lines are kept alike.
        const owner = { app: optionalText(params.app), job: optionalText(params.job) };
        return stream(req, res, FOLLOW_EVENT.logs, backlog, live.acrossReplicas, async (send) => {
          const stopLogs = await live.followLogs(device, (records) =>
            send(records.filter((r) => r.device === device && keepsLine(owner, r))),
          );
          const stopLive = following?.(device);
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
        const backlog = () => page<EventRecord>(async (extra) => (await api.call('events.query', { ...params, ...extra })).events, params);
        const device = params.device === undefined ? undefined : String(params.device);
        // As for logs: the backlog's query refuses app and job together, and the live events are kept alike.
        const owner = { app: optionalText(params.app), job: optionalText(params.job) };
        return stream(req, res, FOLLOW_EVENT.events, backlog, live.acrossReplicas, (send) =>
          live.followEvents(device, (records) =>
            send(records.filter((r) => (device === undefined || r.device === device) && keepsEvent(owner, r))),
          ),
        );
      },
    },
  ];
}

function optionalText(value: string | number | undefined): string | undefined {
  return value === undefined ? undefined : String(value);
}

/** A stream has no end, so an `until` would either be ignored or end it at a time nobody waits for: refuse it. */
function refuseUntil(url: URL): void {
  if (url.searchParams.has('until')) {
    throw new ApiError('invalid_request', 'until cannot be used with follow: a follow stream has no end (drop follow to read up to until)');
  }
}

/** The whole backlog: a `since` window may hold more than one query returns. */
async function page<T extends { id: number }>(
  query: (extra: Record<string, number>) => Promise<T[]>,
  params: Record<string, unknown>,
): Promise<T[]> {
  const all = await query({});
  if (params.tail !== undefined) return all;
  let last = all;
  while (last.length === MAX_QUERY_RECORDS) {
    last = await query({ afterId: last[last.length - 1]!.id });
    all.push(...last);
  }
  return all;
}

const SLOW_NOTE = 'follower too slow; reconnect with afterId';

/**
 * The backlog first, then each committed record not in it, one event per
 * record. Subscribed before the backlog is read, so nothing committed
 * meanwhile is missed; what arrives while it is read waits, and goes out
 * after it. A backlog that cannot be read (an unknown device) is the
 * request's error, answered before the stream opens.
 */
async function stream<T extends { id: number; device: string }>(
  req: IncomingMessage,
  res: ServerResponse,
  event: string,
  backlog: () => Promise<T[]>,
  acrossReplicas: boolean,
  subscribe: (send: (records: T[]) => void) => Promise<() => void>,
): Promise<void> {
  const early: T[] = [];
  let forward: ((records: T[]) => void) | undefined;
  const stop = await subscribe((records) => (forward ? forward(records) : early.push(...records)));
  let first: T[];
  try {
    first = await backlog();
  } catch (err) {
    stop();
    throw err;
  }
  // The client left while the subscription or the backlog was awaited (a replica's follow waits
  // for the others' acknowledgements): its close has been and gone, so nothing else would stop it.
  if (res.destroyed) return stop();
  const events = (records: readonly T[]) => records.map((data) => ({ event, data }));
  const unsent = acrossReplicas ? newerThanDevicesIn(first) : newerThan(first.at(-1)?.id ?? 0);
  const live = (records: readonly T[]) => events(records.filter(unsent));
  openEventStream(
    req,
    res,
    (send) => {
      forward = (records) => send(live(records));
      return { first: [...events(first), ...live(early)], stop };
    },
    SLOW_NOTE,
  );
}

function newerThan(id: number): (record: { id: number }) => boolean {
  return (record) => record.id > id;
}

/** Newer than its device's newest record in `backlog` (any record of a device the backlog does not hold). */
function newerThanDevicesIn(backlog: readonly { id: number; device: string }[]): (record: { id: number; device: string }) => boolean {
  const newest = new Map<string, number>();
  for (const { id, device } of backlog) newest.set(device, Math.max(id, newest.get(device) ?? 0));
  return (record) => record.id > (newest.get(record.device) ?? 0);
}
