/**
 * The fleet table: one row per device, sortable by its header buttons. Rows
 * are memoised on their FleetRow (which the stream replaces only when the
 * device changed), their selection and their "last seen" text, which the view
 * computes on its one clock tick; so a live update or a tick re-renders only
 * the rows whose text changed. Every row has the same height (labels clipped
 * to one line, sparklines a fixed size), so nothing moves as data arrives.
 */
import { memo } from 'preact/compat';
import { useRef } from 'preact/hooks';
import type { FleetRow } from '../../../../shared/api/fleet.js';
import { LabelChips, OnlineBadge, Sparkline } from '../components.js';
import { formatLabels, formatPercent, formatTime } from '../format.js';
import { href } from '../router.js';
import { firstOrder, type SortKey, type SortOrder } from './fleet-order.js';
import { ROW_HEIGHT, useRowRange } from './row-window.js';

export interface FleetTableProps {
  rows: readonly FleetRow[];
  order: SortOrder;
  onSort(order: SortOrder): void;
  /** `lastSeen` as `12s ago`, by device id. */
  ago: ReadonlyMap<string, string>;
  /** Absent for a viewer: no selection column. */
  selection?: { selected: ReadonlySet<string>; toggle(id: string, on: boolean): void; toggleShown(on: boolean): void };
}

export function FleetTable(props: FleetTableProps) {
  const { rows, selection } = props;
  const header = (key: SortKey, text: string, className?: string) => (
    <SortHeader key={key} sortKey={key} text={text} class={className} order={props.order} onSort={props.onSort} />
  );
  const selectedShown = selection ? rows.reduce((n, row) => n + (selection.selected.has(row.id) ? 1 : 0), 0) : 0;
  const body = useRef<HTMLTableSectionElement>(null);
  const range = useRowRange(rows.length, body);
  const columns = selection ? 11 : 10;
  return (
    <div class="table-wrap">
      <table class="fleet" aria-label="Devices" aria-rowcount={rows.length + 1}>
        <thead>
          <tr aria-rowindex={1}>
            {selection && (
              <th class="select">
                <input
                  type="checkbox"
                  aria-label="Select all shown"
                  checked={rows.length > 0 && selectedShown === rows.length}
                  indeterminate={selectedShown > 0 && selectedShown < rows.length}
                  onChange={(e) => selection.toggleShown(e.currentTarget.checked)}
                />
              </th>
            )}
            {header('id', 'Device', 'col-device')}
            {header('status', 'Status', 'col-status')}
            {header('lastSeen', 'Last seen', 'col-seen')}
            <th class="hide-narrow">Labels</th>
            <th class="col-agent hide-narrow">Agent</th>
            <th class="col-apps">Apps</th>
            {header('cpu', 'CPU', 'col-metric')}
            {header('memory', 'Memory', 'col-metric hide-narrow')}
            {header('disk', 'Disk', 'col-metric hide-narrow')}
            {header('temperature', 'Temp.', 'col-temp hide-narrow')}
          </tr>
        </thead>
        <tbody ref={body}>
          <Spacer rows={range.first} columns={columns} />
          {rows.slice(range.first, range.end).map((row, i) => (
            <Row
              key={row.id}
              row={row}
              index={range.first + i + 2}
              ago={props.ago.get(row.id) ?? ''}
              selected={selection?.selected.has(row.id)}
              toggle={selection?.toggle}
            />
          ))}
          <Spacer rows={rows.length - range.end} columns={columns} />
        </tbody>
      </table>
    </div>
  );
}

function SortHeader(props: {
  sortKey: SortKey;
  text: string;
  class?: string | undefined;
  order: SortOrder;
  onSort(order: SortOrder): void;
}) {
  const current = props.order.key === props.sortKey;
  const sort = current ? (props.order.descending ? 'descending' : 'ascending') : undefined;
  const next = current ? { key: props.sortKey, descending: !props.order.descending } : firstOrder(props.sortKey);
  return (
    <th class={props.class} aria-sort={sort}>
      <button type="button" class="sort" onClick={() => props.onSort(next)}>
        {props.text}
        <span class="sort-mark" aria-hidden="true">
          {sort === 'ascending' ? '▲' : sort === 'descending' ? '▼' : ''}
        </span>
      </button>
    </th>
  );
}

/** Stands in for rows outside the rendered range, so the scrollbar and the page's height are those of the whole table. */
function Spacer({ rows, columns }: { rows: number; columns: number }) {
  if (rows === 0) return null;
  return (
    // biome-ignore lint/a11y/noAriaHiddenOnFocusable: an empty row, nothing in it can take focus
    <tr class="spacer" aria-hidden="true" style={{ height: `${rows * ROW_HEIGHT}px` }}>
      <td colSpan={columns} />
    </tr>
  );
}

/** Narrower than the default, to leave the labels room at 1280 px. */
const SPARK_WIDTH = 52;

/** Sparklines redraw only when their samples change (the stream sends new arrays only then). */
const Spark = memo(Sparkline);

const Row = memo(function Row(props: {
  row: FleetRow;
  /** The row's position for assistive technology when only some rows are rendered (the header is 1). */
  index: number;
  ago: string;
  selected: boolean | undefined;
  toggle: ((id: string, on: boolean) => void) | undefined;
}) {
  const { row, toggle } = props;
  const metrics = row.metrics;
  return (
    <tr data-device={row.id} aria-rowindex={props.index}>
      {toggle && (
        <td class="select">
          <input
            type="checkbox"
            aria-label={`Select ${row.id}`}
            checked={props.selected}
            onChange={(e) => toggle(row.id, e.currentTarget.checked)}
          />
        </td>
      )}
      <td class="device">
        <a href={href(['devices', row.id])}>{row.id}</a>
        {row.hostname && row.hostname !== row.id && <small class="host hide-narrow">{row.hostname}</small>}
      </td>
      <td>
        <Status row={row} />
      </td>
      <td title={formatTime(row.lastSeen)}>{props.ago}</td>
      <td class="labels hide-narrow" title={formatLabels(row.labels).join(', ')}>
        <LabelChips labels={row.labels} />
      </td>
      <td class="hide-narrow mono">{row.agentVersion ?? '–'}</td>
      <td>
        <span class="apps" title={`${row.apps.running} running of ${row.apps.desired} desired`}>
          {row.apps.running}/{row.apps.desired}
        </span>
        {row.apps.failing > 0 && <span class="badge bad failing">{row.apps.failing} failing</span>}
      </td>
      <Metric values={row.history.cpu} now={metrics?.cpuPercent} label="CPU" />
      <Metric values={row.history.mem} now={metrics?.memPercent} label="Memory" narrow />
      <Metric values={row.history.disk} now={metrics?.diskPercent} label="Disk" narrow />
      <td class="num hide-narrow">{metrics?.temperatureC === undefined ? '–' : `${metrics.temperatureC.toFixed(1)} °C`}</td>
    </tr>
  );
});

function Status({ row }: { row: FleetRow }) {
  if (row.revokedAt) return <span class="badge bad">revoked</span>;
  if (row.idClash) return <span class="badge bad">id clash</span>;
  return <OnlineBadge online={row.online} />;
}

function Metric(props: { values: readonly number[]; now: number | undefined; label: string; narrow?: boolean }) {
  return (
    <td class={props.narrow ? 'metric hide-narrow' : 'metric'}>
      <Spark values={props.values} max={100} label={props.label} width={SPARK_WIDTH} />
      <span class="pct">{formatPercent(props.now)}</span>
    </td>
  );
}
