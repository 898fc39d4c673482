/**
 * Whose lines a log query or a follow stream keeps: an app's, or a job's. A
 * job's lines carry its name in `app` and `job: true` (shared/schemas/telemetry.ts),
 * so an app and a job may share a name without their lines mixing: `app` keeps
 * only the app's lines, `job` only the job's, neither keeps every line.
 */
import type { LogLine } from '../../shared/index.js';

export interface LineOwner {
  app?: string | undefined;
  job?: string | undefined;
}

export function keepsLine(owner: LineOwner, line: Pick<LogLine, 'app' | 'job'>): boolean {
  if (owner.job !== undefined) return line.job === true && line.app === owner.job;
  if (owner.app !== undefined) return line.job !== true && line.app === owner.app;
  return true;
}
