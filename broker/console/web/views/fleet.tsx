/**
 * The fleet (`#/`): every device, live from the hub's fleet stream, filtered
 * by a label selector and a search (both kept in the address, so a filtered
 * view can be shared), sorted by a column, with a bulk label edit for
 * operators. One clock tick re-renders the "last seen" texts; nothing else
 * runs on a timer.
 */
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { TextField } from '../components.js';
import { countFleet, fleetFilter, formatSortOrder, parseSortOrder, type SortOrder, sortFleet } from '../fleet/fleet-order.js';
import { applyFleetEvent, type FleetRows } from '../fleet/fleet-rows.js';
import { FleetTable } from '../fleet/fleet-table.js';
import { LabelEditor } from '../fleet/label-editor.js';
import { formatAgo } from '../format.js';
import { type FollowState, useFollow, useInterval } from '../hooks.js';
import { replaceRouteQuery, routeQuery } from '../router.js';
import { useSession } from '../session.js';
import '../fleet/fleet.css';

/** How often "last seen" is re-rendered. */
const AGO_TICK_MS = 5000;

interface FleetQuery {
  selector: string;
  search: string;
  order: SortOrder;
}

function readQuery(): FleetQuery {
  const query = routeQuery();
  return { selector: query.get('l') ?? '', search: query.get('q') ?? '', order: parseSortOrder(query.get('s')) };
}

export function FleetView() {
  const { can } = useSession();
  const [rows, setRows] = useState<FleetRows | undefined>();
  const [query, setQuery] = useState(readQuery);
  const [now, setNow] = useState(() => Date.now());
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [editing, setEditing] = useState(false);

  const follow = useFollow(
    () => '/api/v1/devices?follow=true',
    (event) => setRows((current) => applyFleetEvent(current ?? new Map(), event)),
    [],
  );
  useInterval(() => setNow(Date.now()), AGO_TICK_MS);

  // A link to a filtered fleet followed from the fleet itself changes only the query.
  useEffect(() => {
    const changed = () => setQuery(readQuery());
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  const update = (next: Partial<FleetQuery>) => {
    const merged = { ...query, ...next };
    setQuery(merged);
    const sort = formatSortOrder(merged.order);
    replaceRouteQuery({ l: merged.selector, q: merged.search, s: sort === 'id' ? '' : sort });
  };

  const filter = useMemo(() => fleetFilter(query.selector, query.search), [query.selector, query.search]);
  const shown = useMemo(() => (rows ? sortFleet([...rows.values()].filter(filter.matches), query.order) : []), [rows, filter, query.order]);
  const counts = useMemo(() => countFleet(rows?.values() ?? [], shown.length), [rows, shown.length]);
  const ago = useMemo(() => new Map(shown.map((row) => [row.id, formatAgo(row.lastSeen, now)])), [shown, now]);

  const canEdit = can('operator');
  const toggle = useCallback((id: string, on: boolean) => setSelected((current) => withOrWithout(current, [id], on)), []);
  const toggleShown = useCallback(
    (on: boolean) =>
      setSelected((current) =>
        withOrWithout(
          current,
          shown.map((row) => row.id),
          on,
        ),
      ),
    [shown],
  );
  const selection = useMemo(() => ({ selected, toggle, toggleShown }), [selected, toggle, toggleShown]);
  // The edit applies to what is selected and shown: a filter hides rows from the edit too.
  const editDevices = useMemo(() => shown.filter((row) => selected.has(row.id)).map((row) => row.id), [shown, selected]);

  return (
    <section class="fleet-view">
      <h1>Fleet</h1>
      <div class="toolbar fleet-filters">
        <div class="grow">
          <TextField
            label="Label selector"
            help="site=roof, arch in (arm64, armv7), !gpu"
            error={filter.selectorError}
            value={query.selector}
            onValue={(selector) => update({ selector })}
            type="text"
          />
        </div>
        <div class="grow">
          <TextField
            label="Search"
            help="id, hostname or label"
            value={query.search}
            onValue={(search) => update({ search })}
            type="search"
          />
        </div>
      </div>
      <div class="fleet-summary">
        <p class="counts" aria-live="polite">
          {rows ? countsText(counts) : 'Loading the fleet…'}
        </p>
        <StreamState state={follow} />
        {canEdit && (
          <button type="button" class="secondary" disabled={editDevices.length === 0} onClick={() => setEditing(true)}>
            Edit labels{editDevices.length > 0 ? ` (${editDevices.length})` : ''}
          </button>
        )}
      </div>
      {canEdit && editing && (
        <LabelEditor devices={editDevices} onClose={() => setEditing(false)} onDone={(failed) => setSelected(new Set(failed))} />
      )}
      {rows && rows.size === 0 ? (
        <p class="notice">
          No devices yet. A device joins with a registration token (Admin → Tokens):{' '}
          <code>flotilla agent register --hub URL --token T</code>
        </p>
      ) : (
        <FleetTable rows={shown} order={query.order} onSort={(order) => update({ order })} ago={ago} {...(canEdit ? { selection } : {})} />
      )}
    </section>
  );
}

function countsText(counts: { devices: number; online: number; shown: number }): string {
  const devices = `${counts.devices} device${counts.devices === 1 ? '' : 's'}`;
  return `${devices}, ${counts.online} online, ${counts.shown} shown`;
}

function StreamState({ state }: { state: FollowState }) {
  const text = state === 'live' ? 'Live' : state === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  return (
    <span class={`stream-state ${state}`} role="status">
      {text}
    </span>
  );
}

function withOrWithout(set: ReadonlySet<string>, ids: readonly string[], on: boolean): ReadonlySet<string> {
  const next = new Set(set);
  for (const id of ids) {
    if (on) next.add(id);
    else next.delete(id);
  }
  return next;
}
