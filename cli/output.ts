/**
 * Output for people (kubectl-style tables and ages) and for programs (JSON
 * and YAML of the hub's response bodies, unchanged).
 *
 * Text that came from devices (messages, labels, image names) goes through
 * `cell()` before it reaches the terminal: a device must not be able to move
 * the operator's cursor or break a table with a newline.
 */
import type { OutputFormat } from './output-formats.js';
import { yaml } from './yaml.js';

export { OUTPUT_FORMATS, type OutputFormat } from './output-formats.js';

function toYaml(value: unknown): string {
  return yaml().stringify(value);
}

/** Columns are separated by this much space, as in kubectl. */
const GUTTER = '   ';

/**
 * Upper-case headers, columns padded to their widest cell, no borders, no
 * trailing spaces. Returns the lines joined by `\n`, with a final `\n`.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = columnWidths(headers, rows);
  return [headers.map((h) => h.toUpperCase()), ...rows].map((row) => formatRow(row, widths)).join('');
}

/** How wide formatTable makes each column: its widest cell, the header's included. */
export function columnWidths(headers: readonly string[], rows: readonly (readonly string[])[]): number[] {
  return headers.map((header, i) => Math.max(width(header), ...rows.map((row) => width(cell(row[i] ?? '')))));
}

/**
 * One line of a table laid out with `widths` (columnWidths), ending in `\n`: a row
 * printed under a table printed before it (`get jobs -w`). A cell wider than its column
 * pushes the rest of the row out, as in `kubectl get -w`.
 */
export function formatRow(row: readonly string[], widths: readonly number[]): string {
  const cells = widths.map((_, i) => cell(row[i] ?? ''));
  const line = cells
    .map((value, i) => (i === cells.length - 1 ? value : value + ' '.repeat(Math.max(0, (widths[i] ?? 0) - width(value)))))
    .join(GUTTER)
    .trimEnd();
  return `${line}\n`;
}

/** Code points, so that `é` or `→` count once (wide CJK glyphs are not handled). */
function width(text: string): number {
  return [...text].length;
}

/** One line of plain text: control characters (ESC, CR, LF, TAB…) become spaces or `?`. */
export function cell(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  return text.replace(/[\t\n\r]+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;

/**
 * Time since `since`, in its largest whole unit: `5s`, `3m`, `2h`, `4d`, `1y`.
 * A timestamp in the future (clock skew between hub and CLI) reads `0s`;
 * null or unparseable reads `<unknown>`.
 */
export function formatAge(since: string | Date | null | undefined, now: number = Date.now()): string {
  if (since === null || since === undefined) return '<unknown>';
  const at = since instanceof Date ? since.getTime() : Date.parse(since);
  if (Number.isNaN(at)) return '<unknown>';
  const seconds = Math.max(0, Math.floor((now - at) / 1000));
  if (seconds < MINUTE) return `${seconds}s`;
  if (seconds < HOUR) return `${Math.floor(seconds / MINUTE)}m`;
  if (seconds < DAY) return `${Math.floor(seconds / HOUR)}h`;
  if (seconds < YEAR) return `${Math.floor(seconds / DAY)}d`;
  return `${Math.floor(seconds / YEAR)}y`;
}

/**
 * A duration as kubectl writes ages (apimachinery's `HumanDuration`): exact while short,
 * coarser as it grows: `45s`, `119s`, `3m20s`, `42m`, `5h7m`, `20h`, `3d4h`, `12d`, `2y30d`.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0) return '0s';
  if (seconds < 2 * MINUTE) return `${seconds}s`;
  const minutes = Math.floor(seconds / MINUTE);
  const withRest = (whole: number, unit: string, rest: number, restUnit: string) =>
    rest === 0 ? `${whole}${unit}` : `${whole}${unit}${rest}${restUnit}`;
  if (minutes < 10) return withRest(minutes, 'm', seconds % MINUTE, 's');
  if (minutes < 3 * 60) return `${minutes}m`;
  const hours = Math.floor(seconds / HOUR);
  if (hours < 8) return withRest(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 8 * 24) return withRest(days, 'd', hours % 24, 'h');
  if (days < 2 * 365) return `${days}d`;
  const years = Math.floor(days / 365);
  if (days < 8 * 365) return withRest(years, 'y', days % 365, 'd');
  return `${years}y`;
}

/**
 * A duration in its largest unit, rounded to the nearest one: what is left before a
 * deadline reads as it was set (a 7d deadline made a minute ago is `7d`, not `6d`), and
 * a value that rounds up to the next unit is written in it (23h50m is `1d`).
 */
export function roundedDuration(ms: number): string {
  const seconds = Math.max(0, ms / 1000);
  const units: [number, string][] = [
    [YEAR, 'y'],
    [DAY, 'd'],
    [HOUR, 'h'],
    [MINUTE, 'm'],
  ];
  for (const [i, [size, unit]] of units.entries()) {
    const bigger = units[i - 1];
    if (seconds < size) continue;
    const n = Math.round(seconds / size);
    return bigger !== undefined && n * size >= bigger[0] ? `1${bigger[1]}` : `${n}${unit}`;
  }
  const n = Math.round(seconds);
  return n >= MINUTE ? '1m' : `${n}s`;
}

/** `k=v,k2=v2`, sorted by key so that the same labels always read the same; `<none>` when empty. */
export function formatLabels(labels: Readonly<Record<string, string>> | undefined, separator = ','): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${v}`).join(separator);
}

export function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}

/** A response body for programs: pretty JSON, or YAML, each ending in a newline. */
export function formatStructured(value: unknown, format: Exclude<OutputFormat, 'table'>): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value);
}

/**
 * `Key:   value` lines with the values aligned, kubectl-describe style. A value
 * with several lines (a list) continues under the first one.
 */
export function formatFields(fields: readonly (readonly [string, string | readonly string[]])[], indent = ''): string {
  const keyWidth = Math.max(0, ...fields.map(([key]) => width(key) + 1));
  let out = '';
  for (const [key, value] of fields) {
    const lines = typeof value === 'string' ? [value] : value.length === 0 ? ['<none>'] : value;
    lines.forEach((line, i) => {
      const label = i === 0 ? `${key}:` : '';
      out += `${indent}${label}${' '.repeat(keyWidth - width(label))}  ${cell(line)}`.trimEnd();
      out += '\n';
    });
  }
  return out;
}

/** Indents every line of a block (a table inside a describe section). */
export function indent(block: string, by = '  '): string {
  return block
    .split('\n')
    .map((line) => (line === '' ? line : by + line))
    .join('\n');
}
