/**
 * The fleet's events (`#/events`): the newest 200 from the hub, then each one
 * as it is stored (`GET /api/v1/events?follow=true` after the last id),
 * newest first, filtered by device and type (kept in the address). With
 * `Live` off, new events wait above the table instead of pushing the rows
 * being read down the page.
 *
 * The backlog is a query of its own rather than the stream's `tail`: a
 * stream says nothing until there is an event, so only a query can tell
 * "no events yet" from "still connecting".
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type EventRecord, FOLLOW_EVENT } from '../../../../shared/telemetry-api.js';
import { Await, DataTable, Field, Options, TextField } from '../components.js';
import { eventTone, eventTypes, filterEvents, formatEventTime, mergeEvents } from '../fleet/event-list.js';
import { useFollow, useLoad } from '../hooks.js';
import { href, replaceRouteQuery, routeQuery } from '../router.js';
import { useSession } from '../session.js';
import '../fleet/events.css';

/** Events asked for when the page opens. */
const BACKLOG = 200;
/** Rows rendered at once; `Show more` adds as many again (a table is laid out whole on every new event). */
const PAGE = 100;

export function EventsView() {
  const { api } = useSession();
  const [backlog] = useLoad(() => api.call('events.query', { tail: BACKLOG }), [api]);
  return (
    <section class="events-view">
      <h1>Events</h1>
      <Await loaded={backlog}>{(result) => <FollowedEvents backlog={result.events} />}</Await>
    </section>
  );
}

const EVENT_COLUMNS = [
  { label: 'Time' },
  { label: 'Device' },
  { label: 'Type' },
  { label: 'App', class: 'hide-narrow' },
  { label: 'Message' },
];

function FollowedEvents(props: { backlog: EventRecord[] }) {
  const [events, setEvents] = useState<EventRecord[]>(() => mergeEvents([], props.backlog));
  const [waiting, setWaiting] = useState<EventRecord[]>([]);
  const [live, setLive] = useState(true);
  const [filter, setFilter] = useState(() => {
    const query = routeQuery();
    return { device: query.get('device') ?? '', type: query.get('type') ?? '' };
  });
  const [limit, setLimit] = useState(PAGE);
  const lastId = useRef(props.backlog.reduce((last, event) => Math.max(last, event.id), 0));
  const liveNow = useRef(live);
  liveNow.current = live;

  const state = useFollow(
    // A reconnect too asks only for what was stored after the last event shown.
    () => `/api/v1/events?follow=true&afterId=${lastId.current}`,
    (event) => {
      if (event.event !== FOLLOW_EVENT.events) return;
      let record: EventRecord;
      try {
        record = JSON.parse(event.data) as EventRecord;
      } catch {
        return;
      }
      lastId.current = Math.max(lastId.current, record.id);
      if (liveNow.current) setEvents((current) => mergeEvents(current, [record]));
      else setWaiting((current) => mergeEvents(current, [record]));
    },
    [],
  );
  // Turning Live back on shows what waited.
  useEffect(() => {
    if (!live || waiting.length === 0) return;
    setEvents((current) => mergeEvents(current, waiting));
    setWaiting([]);
  }, [live, waiting]);

  const update = (next: Partial<typeof filter>) => {
    const merged = { ...filter, ...next };
    setFilter(merged);
    setLimit(PAGE);
    replaceRouteQuery({ device: merged.device, type: merged.type });
  };
  const shown = useMemo(() => filterEvents(events, filter), [events, filter]);
  const types = useMemo(() => eventTypes(events), [events]);
  if (filter.type && !types.includes(filter.type)) types.unshift(filter.type);

  return (
    <>
      <div class="toolbar">
        <TextField label="Device" help="part of a device id" value={filter.device} onValue={(device) => update({ device })} type="search" />
        <Field label="Type" help="one event type">
          {(id, describedBy) => (
            <select id={id} aria-describedby={describedBy} value={filter.type} onChange={(e) => update({ type: e.currentTarget.value })}>
              <option value="">All types</option>
              <Options values={types} />
            </select>
          )}
        </Field>
        <label class="check">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Live
        </label>
      </div>
      <p class="events-summary" role="status">
        {summary(events.length, shown.length, waiting.length)}
        {state === 'reconnecting' && ' Reconnecting…'}
      </p>
      <DataTable
        label="Events"
        class="events"
        columns={EVENT_COLUMNS}
        items={shown.slice(0, limit)}
        emptyRow={{ text: events.length === 0 ? 'No events yet.' : 'No events match the filter.', class: 'loading' }}
      >
        {(event) => <EventRow key={event.id} event={event} />}
      </DataTable>
      {shown.length > limit && (
        <p>
          <button type="button" class="secondary" onClick={() => setLimit((n) => n + PAGE)}>
            Show more ({shown.length - limit} older)
          </button>
        </p>
      )}
    </>
  );
}

function summary(total: number, shown: number, waiting: number): string {
  if (total === 0) return 'No events yet.';
  const base = shown === total ? `${total} events` : `${shown} of ${total} events shown`;
  return waiting > 0 ? `${base}; ${waiting} new waiting (turn on Live to show them).` : `${base}.`;
}

function EventRow({ event }: { event: EventRecord }) {
  return (
    <tr data-event-id={event.id}>
      <td title={event.ts}>{formatEventTime(event.ts)}</td>
      <td>
        <a href={href(['devices', event.device])}>{event.device}</a>
      </td>
      <td>
        <span class={`event-type ${eventTone(event.type)}`}>{event.type}</span>
      </td>
      <td class="hide-narrow">
        {event.app ?? '–'}
        {event.container ? ` / ${event.container}` : ''}
      </td>
      <td class="message">{event.message}</td>
    </tr>
  );
}
