/**
 * What the outbox holds, in priority order: when it is full, the last class
 * loses its oldest messages first, and after an outage the first class is
 * sent first. State reports are not here: a report is whole and retained, so
 * only the newest matters, and the agent recomputes it from the engine after
 * a restart (link.ts keeps that one in memory).
 */
export const OUTBOX_CLASSES = ['events', 'logs', 'metrics'] as const;
export type OutboxClass = (typeof OUTBOX_CLASSES)[number];

const HOUR = 3_600_000;

/**
 * How long each class is worth delivering late. An event (a rollback, a failed
 * pull) explains history for days; a log line a little less; a metric sample
 * of six hours ago only fills a gap in a graph.
 */
export const DEFAULT_OUTBOX_TTL_MS: Readonly<Record<OutboxClass, number>> = {
  events: 7 * 24 * HOUR,
  logs: 2 * 24 * HOUR,
  metrics: 6 * HOUR,
};

export function classIndex(cls: OutboxClass): number {
  return OUTBOX_CLASSES.indexOf(cls);
}
