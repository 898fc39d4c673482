/**
 * The lines of an attempt's output its report carries: the last
 * MAX_REPORTED_OUTPUT_LINES of all its containers together, oldest first, each
 * at most MAX_REPORTED_OUTPUT_LINE characters. With several containers a line
 * says whose it is (`migrate: done`). The whole output goes through the log
 * pipeline (telemetry/logs/); this is what an operator sees at a glance.
 */
import { MAX_REPORTED_OUTPUT_LINE, MAX_REPORTED_OUTPUT_LINES } from '../../shared/index.js';
import { timestampNanos } from '../runtime/log-time.js';
import type { LogEntry } from '../runtime/runtime.js';

export interface ContainerOutput {
  container: string;
  /** The container's last lines, oldest first. */
  entries: readonly LogEntry[];
}

export function reportedOutput(outputs: readonly ContainerOutput[]): string[] {
  const named = outputs.length > 1;
  const lines = outputs.flatMap(({ container, entries }) =>
    entries.map((entry) => ({ at: timestampNanos(entry.ts) ?? 0n, text: named ? `${container}: ${entry.line}` : entry.line })),
  );
  // A stable sort: lines of one container that share a timestamp keep their order.
  lines.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return lines.slice(-MAX_REPORTED_OUTPUT_LINES).map(({ text }) => cutChars(text, MAX_REPORTED_OUTPUT_LINE));
}

/** At most `max` UTF-16 units (the schema's maxLength), never half a surrogate pair. */
function cutChars(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}
