/** Small pieces every view uses, so they look and behave alike. */
import type { ComponentChildren, JSX } from 'preact';
import { useId } from 'preact/hooks';
import { ApiCallError } from './api.js';
import type { Loaded } from './hooks.js';
import { href } from './router.js';

/** A failed call, said plainly; `role="alert"` so screen readers hear it. */
export function ErrorNote({ error }: { error: unknown }) {
  const message = error instanceof Error ? error.message : String(error);
  const forbidden = error instanceof ApiCallError && error.status === 403;
  return (
    <p class="error" role="alert">
      {forbidden ? `Not allowed: ${message}` : message}
    </p>
  );
}

/** Renders a loaded value, or its loading or error state. */
export function Await<T>(props: { loaded: Loaded<T>; children: (value: T) => ComponentChildren }) {
  if (props.loaded.state === 'loading') return <p class="loading">Loading…</p>;
  if (props.loaded.state === 'failed') return <ErrorNote error={props.loaded.error} />;
  return <>{props.children(props.loaded.value)}</>;
}

export function OnlineBadge({ online }: { online: boolean }) {
  return <span class={`badge ${online ? 'ok' : 'off'}`}>{online ? 'online' : 'offline'}</span>;
}

/** A phase or state word with a colour that says how it is going. */
export function PhaseBadge({ phase }: { phase: string | null | undefined }) {
  const tone = !phase
    ? 'off'
    : /^(running|healthy|complete|ok)$/.test(phase)
      ? 'ok'
      : /fail|error|crash|abort|revert/.test(phase)
        ? 'bad'
        : 'busy';
  return <span class={`badge ${tone}`}>{phase ?? 'unknown'}</span>;
}

export interface Tab {
  id: string;
  label: string;
}

/** Tabs that are links (each tab has an address), marked up as a tab list. */
export function Tabs(props: { base: string[]; tabs: Tab[]; current: string; label: string }) {
  return (
    <nav class="tabs" aria-label={props.label}>
      {props.tabs.map((tab) => (
        <a key={tab.id} href={href([...props.base, tab.id])} aria-current={tab.id === props.current ? 'page' : undefined}>
          {tab.label}
        </a>
      ))}
    </nav>
  );
}

/**
 * A line of the last values, drawn as SVG in a fixed box, so a row's height
 * never changes as samples arrive. `max` fixes the scale (100 for percent).
 */
export function Sparkline(props: { values: readonly number[]; max?: number; label: string; width?: number; height?: number }) {
  const width = props.width ?? 64;
  const height = props.height ?? 18;
  const values = props.values.filter((v) => Number.isFinite(v));
  const max = props.max ?? Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (Math.min(v, max) / max) * (height - 2)).toFixed(1)}`);
  const last = values.at(-1);
  return (
    <svg
      class="spark"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${props.label}${last === undefined ? ': no data' : `: ${Math.round(last)}`}`}
    >
      {points.length > 1 && <polyline points={points.join(' ')} fill="none" stroke="currentColor" stroke-width="1.5" />}
    </svg>
  );
}

/** A labelled input with its error beneath it, linked for assistive technology. */
export function Field(props: {
  label: string;
  error?: string;
  help?: string;
  children: (id: string, describedBy?: string) => ComponentChildren;
}) {
  const id = useId();
  const describedBy = [props.help && `${id}-help`, props.error && `${id}-error`].filter(Boolean).join(' ') || undefined;
  return (
    <div class={`field${props.error ? ' invalid' : ''}`}>
      <label for={id}>{props.label}</label>
      {props.children(id, describedBy)}
      {props.help && (
        <small id={`${id}-help`} class="help">
          {props.help}
        </small>
      )}
      {props.error && (
        <small id={`${id}-error`} class="error" role="alert">
          {props.error}
        </small>
      )}
    </div>
  );
}

/**
 * A Field holding one text input, `aria-invalid` while it shows an error;
 * other input attributes pass through. What the console asks for is ids,
 * names, labels and numbers, never prose: the browser's remembered entries
 * and spelling marks are off unless a caller turns them on.
 */
export function TextField(
  props: { label: string; error?: string | undefined; help?: string; value: string; onValue: (value: string) => void } & Omit<
    JSX.InputHTMLAttributes<HTMLInputElement>,
    'label' | 'value' | 'onInput' | 'id'
  >,
) {
  const { label, error, help, value, onValue, ...input } = props;
  return (
    <Field label={label} {...(error ? { error } : {})} {...(help ? { help } : {})}>
      {(id, describedBy) => (
        <input
          autocomplete="off"
          spellcheck={false}
          {...input}
          id={id}
          aria-describedby={describedBy}
          aria-invalid={error ? true : undefined}
          value={value}
          onInput={(event) => onValue(event.currentTarget.value)}
        />
      )}
    </Field>
  );
}

/** A select's options, each value its own text. */
export function Options({ values }: { values: readonly string[] }) {
  return (
    <>
      {values.map((value) => (
        <option key={value} value={value}>
          {value}
        </option>
      ))}
    </>
  );
}

/** Labels as chips, one `key=value` each. */
export function LabelChips({ labels }: { labels: Record<string, string> }) {
  return (
    <>
      {Object.entries(labels).map(([key, value]) => (
        <span key={key} class="label">
          {key}={value}
        </span>
      ))}
    </>
  );
}

/** A DataTable's column: its header text, and the classes its header cell takes (`num`, `hide-narrow`). */
export interface Column {
  label: string;
  class?: string;
  title?: string;
  /** Said to screen readers only: an actions column needs no visible header. */
  hidden?: boolean;
}

/** The header of a column of per-row buttons. */
export const ACTIONS_COLUMN: Column = { label: 'Actions', hidden: true };

/**
 * A table of items under one header row, in `.table-wrap` so it scrolls
 * sideways on a phone. With no items it shows `empty` instead of the table,
 * or, given `emptyRow`, keeps the table and says so in a full-width row (for
 * a table that stays in place while filters or polls change what it holds).
 * A column given as `false` is left out, for columns only some roles see.
 */
export function DataTable<T>(props: {
  label: string;
  columns: readonly (Column | false)[];
  items: readonly T[];
  children: (item: T) => ComponentChildren;
  empty?: ComponentChildren;
  emptyRow?: { text: ComponentChildren; class: string };
  class?: string;
}) {
  if (props.items.length === 0 && props.empty !== undefined) return <>{props.empty}</>;
  const columns = props.columns.filter((column): column is Column => column !== false);
  return (
    <div class="table-wrap">
      <table class={props.class} aria-label={props.label}>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column.label} scope="col" class={column.class} title={column.title}>
                {column.hidden ? <span class="visually-hidden">{column.label}</span> : column.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.items.map((item) => props.children(item))}
          {props.items.length === 0 && props.emptyRow && (
            <tr>
              <td colSpan={columns.length} class={props.emptyRow.class}>
                {props.emptyRow.text}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}
