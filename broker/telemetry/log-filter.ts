/**
 * Whose records a logs or events query, or a follow stream, keeps: an app's,
 * or a job's. A job and an app may share a name, so neither is told by its
 * name alone:
 * - a job's log lines carry its name in `app` and `job: true`
 *   (shared/schemas/telemetry.ts);
 * - a job's events carry its name in `app` and a type starting `job-` (the
 *   device's agent/jobs/events.ts and the hub's broker/jobs/events.ts), which
 *   no app's event has.
 * `app` keeps only the app's, `job` only the job's, neither keeps every record.
 * The stored reads filter events in SQL (eventOwnerSql, the same text on
 * SQLite and PostgreSQL) and a follow stream filters each record (keepsEvent):
 * the two must keep the same records.
 */
import type { EventRecord, LogLine } from '../../shared/index.js';

export interface LineOwner {
  app?: string | undefined;
  job?: string | undefined;
}

export function keepsLine(owner: LineOwner, line: Pick<LogLine, 'app' | 'job'>): boolean {
  if (owner.job !== undefined) return line.job === true && line.app === owner.job;
  if (owner.app !== undefined) return line.job !== true && line.app === owner.app;
  return true;
}

/** What every job event's type starts with, and no app event's. */
export const JOB_EVENT_PREFIX = 'job-';

export function keepsEvent(owner: LineOwner, event: Pick<EventRecord, 'app' | 'type'>): boolean {
  if (owner.job !== undefined) return event.app === owner.job && event.type.startsWith(JOB_EVENT_PREFIX);
  if (owner.app !== undefined) return event.app === owner.app && !event.type.startsWith(JOB_EVENT_PREFIX);
  return true;
}

/** An event of a job, in SQL both engines read alike: `substr` compares the prefix exactly, where LIKE's case rules differ. */
const IS_JOB_EVENT = `substr(type, 1, ${JOB_EVENT_PREFIX.length}) = '${JOB_EVENT_PREFIX}'`;

/**
 * keepsEvent as conditions on the events table's `app` and `type` columns, to AND with the
 * query's others; `param(name)` binds the name and answers its placeholder in the engine's SQL.
 */
export function eventOwnerSql(owner: LineOwner, param: (name: string) => string): string[] {
  if (owner.job !== undefined) return [`app = ${param(owner.job)}`, IS_JOB_EVENT];
  if (owner.app !== undefined) return [`app = ${param(owner.app)}`, `NOT (${IS_JOB_EVENT})`];
  return [];
}
