/**
 * The Events tab: the device's newest events, then each new one as the hub
 * stores it (the events follow stream, resumed with `afterId`), newest first.
 */
import { useRef, useState } from 'preact/hooks';
import { type EventRecord, FOLLOW_EVENT } from '../../../../shared/telemetry-api.js';
import { DataTable } from '../components.js';
import { formatTime } from '../format.js';
import { useFollow } from '../hooks.js';

const BACKLOG = 200;
/** Events kept on the page; older ones go first. */
const MAX_EVENTS = 1000;

const EVENT_COLUMNS = [
  { label: 'Time' },
  { label: 'Type' },
  { label: 'App' },
  { label: 'Container', class: 'hide-narrow' },
  { label: 'Message' },
];

export function EventsTab({ id }: { id: string }) {
  const [events, setEvents] = useState<EventRecord[]>([]);
  const lastId = useRef<number | undefined>();
  const state = useFollow(
    () => {
      const query = new URLSearchParams({ device: id, follow: 'true' });
      if (lastId.current === undefined) query.set('tail', String(BACKLOG));
      else query.set('afterId', String(lastId.current));
      return `/api/v1/events?${query}`;
    },
    (event) => {
      if (event.event !== FOLLOW_EVENT.events) return;
      const record = JSON.parse(event.data) as EventRecord;
      if (lastId.current !== undefined && record.id <= lastId.current) return;
      lastId.current = record.id;
      setEvents((held) => [record, ...held].slice(0, MAX_EVENTS));
    },
    [id],
  );
  return (
    <section class="events-tab">
      <p class="help" role="status">
        {state === 'connecting'
          ? 'Loading…'
          : state === 'reconnecting'
            ? 'Reconnecting…'
            : events.length === 0
              ? 'No events yet; new ones appear as they happen.'
              : `${events.length} events; new ones appear as they happen.`}
      </p>
      <DataTable label="Events" columns={EVENT_COLUMNS} items={events}>
        {(e) => (
          <tr key={e.id} data-event-id={e.id}>
            <td>{formatTime(e.ts)}</td>
            <td>{e.type}</td>
            <td>{e.app ?? '–'}</td>
            <td class="hide-narrow">{e.container ?? '–'}</td>
            <td class="wrap">{e.message}</td>
          </tr>
        )}
      </DataTable>
    </section>
  );
}
