/**
 * `-w` of the job commands: the job asked for again every second, printed on every
 * change.
 *
 * - `flotilla run … -w` and `flotilla describe job NAME -w` follow one job until it is
 *   no longer active and exit by how it ended, as `rollout status -w` does: 0 when every
 *   execution succeeded, 1 otherwise (job-text.ts jobOutcome says which devices and why,
 *   and where to read more). Ctrl-C stops the watch, never the job.
 * - A job canceled or aborted is over before its devices are: a running execution stops
 *   on its device (docker stop's grace) and is reported `canceled` after. The watch goes
 *   on until no execution is `running`, saying how many are still stopping, so it ends on
 *   what the devices did. A device offline holds its execution `running` until it comes
 *   back: after STOP_WAIT_MS the watch ends anyway, naming the devices that had not
 *   confirmed.
 * - `flotilla get jobs [NAME] -w` prints the table once, then a row for each job that
 *   changes, until Ctrl-C (exit 0), as `kubectl get -w` does: a list has no end to wait for.
 *
 * Invariants:
 * - A watch follows the job it first sees (by its creation time). A job deleted meanwhile
 *   ends it with exit 3, and one deleted and made again under the same name with exit 1:
 *   the new job's outcome is not the one the operator watched for.
 * - `-o json` prints one JSON line per change (a stream a program reads line by line);
 *   `-o yaml` one document per change; the table format what the caller shows. What is
 *   not the job's view (the devices still stopping) goes to stderr then, so stdout stays
 *   a stream of views.
 */
import type { JobDetail, JobSummary } from '../../shared/index.js';
import { type HubClient, HubError } from '../client.js';
import type { CliIO } from '../context.js';
import { CliError, EXIT_FAILED, EXIT_NOT_FOUND } from '../errors.js';
import { JOBS_TABLE_HEADERS, jobOutcome, jobRow } from '../job-text.js';
import { columnWidths, formatRow, formatStructured, formatTable, type OutputFormat } from '../output.js';
import { interruptSignal, sleep } from '../telemetry.js';

/** How often a watch asks the hub (as a rollout's watch does). */
export const WATCH_INTERVAL_MS = 1000;

/** How long a watch waits for the devices of a canceled or aborted job to stop its running executions. */
export const STOP_WAIT_MS = 60_000;

export interface WatchJobOptions {
  format: OutputFormat;
  /** What one change prints in the table format. */
  show: (job: JobDetail) => string;
  /** What counts as a change (default: anything in the job's view). */
  changeKey?: (job: JobDetail) => string;
  /** The job watched was made then: one made later under the same name is another job. */
  createdAt?: string;
  /** How often the hub is asked (default WATCH_INTERVAL_MS). */
  intervalMs?: number;
  /** How long running executions of a stopped job are waited for (default STOP_WAIT_MS). */
  stopWaitMs?: number;
}

/** How a watch ended: the job as last seen, and the devices still running it when the wait for their stop ran out. */
export interface WatchEnd {
  job: JobDetail;
  unconfirmed: string[];
  /** How long their stop was waited for. */
  waitedMs: number;
}

/**
 * Prints the job on every change until it is no longer active and no execution is
 * running (or the wait for a stop ran out), and returns how it ended.
 */
export async function watchJob(io: CliIO, client: HubClient, name: string, options: WatchJobOptions): Promise<WatchEnd> {
  const intervalMs = options.intervalMs ?? WATCH_INTERVAL_MS;
  const stopWaitMs = options.stopWaitMs ?? STOP_WAIT_MS;
  let createdAt = options.createdAt;
  let last: string | undefined;
  let stoppingSince: number | undefined;
  let stoppingShown: number | undefined;
  for (;;) {
    let job: JobDetail;
    try {
      job = await client.call('jobs.get', { name });
    } catch (err) {
      if (createdAt !== undefined && err instanceof HubError && err.status === 404) {
        throw new CliError(`job/${name} was deleted while it was watched`, EXIT_NOT_FOUND);
      }
      throw err;
    }
    createdAt ??= job.createdAt;
    if (job.createdAt !== createdAt) {
      throw new CliError(`job/${name} was deleted and made again (at ${job.createdAt}) while it was watched`, EXIT_FAILED, [
        `follow the new one: flotilla describe job ${name} -w`,
      ]);
    }
    const key = (options.changeKey ?? JSON.stringify)(job);
    if (key !== last) {
      last = key;
      io.stdout(streamed(job, options.format, options.show));
    }
    if (job.phase !== 'active') {
      const running = job.executions.filter((e) => e.state === 'running');
      if (running.length === 0) return { job, unconfirmed: [], waitedMs: 0 };
      const now = Date.now();
      stoppingSince ??= now;
      if (running.length !== stoppingShown) {
        stoppingShown = running.length;
        const note = `${stillStoppingText(running.length)}\n`;
        if (options.format === 'table') io.stdout(note);
        else io.stderr(note);
      }
      if (now - stoppingSince >= stopWaitMs) {
        return { job, unconfirmed: running.map((e) => e.device).sort(), waitedMs: now - stoppingSince };
      }
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** `2 still stopping on their devices`. */
export function stillStoppingText(n: number): string {
  return n === 1 ? '1 still stopping on its device' : `${n} still stopping on their devices`;
}

/** The watched job's end as the exit code: returns when every execution succeeded, throws (exit 1) otherwise. */
export function exitByOutcome(end: WatchEnd): void {
  const error = jobOutcome(end.job, end.unconfirmed, end.waitedMs);
  if (error !== undefined) throw error;
}

/**
 * `get jobs -w`: `read` asked every second until Ctrl-C or stdout's reader goes away. The
 * table is printed once, header and all; after it, each job whose phase or counts change
 * (or that comes) is printed again as one row under it, in the first table's columns, as
 * `kubectl get -w` does. A job that goes prints nothing. `-o json|yaml` print `read`'s
 * whole body on every change.
 */
export async function watchJobList<T>(
  io: CliIO,
  format: OutputFormat,
  read: () => Promise<T>,
  rows: (body: T) => readonly JobSummary[],
): Promise<void> {
  const interrupt = interruptSignal();
  try {
    /** Each job's phase and counts as last printed, by name. */
    let printed = new Map<string, string>();
    let widths: number[] | undefined;
    let saidNone = false;
    let first = true;
    while (!interrupt.signal.aborted) {
      const body = await read();
      const jobs = rows(body);
      const keys = new Map(jobs.map((job) => [job.name, JSON.stringify([job.createdAt, job.phase, job.reason, job.counts])]));
      const changed = jobs.filter((job) => printed.get(job.name) !== keys.get(job.name));
      const gone = [...printed.keys()].some((name) => !keys.has(name));
      if (format !== 'table') {
        if (first || changed.length > 0 || gone) io.stdout(streamed(body, format));
      } else if (widths === undefined) {
        if (jobs.length > 0) {
          const cells = jobs.map((job) => jobRow(job));
          widths = columnWidths(JOBS_TABLE_HEADERS, cells);
          io.stdout(formatTable(JOBS_TABLE_HEADERS, cells));
        } else if (!saidNone) {
          saidNone = true;
          io.stderr('No jobs found.\n');
        }
      } else {
        for (const job of changed) io.stdout(formatRow(jobRow(job), widths));
      }
      if (format !== 'table' || widths !== undefined) printed = keys;
      first = false;
      await sleep(WATCH_INTERVAL_MS, interrupt.signal);
    }
  } finally {
    interrupt.dispose();
  }
}

function streamed<T>(body: T, format: OutputFormat, show?: (body: T) => string): string {
  if (format === 'json') return `${JSON.stringify(body)}\n`;
  if (format === 'yaml') return `---\n${formatStructured(body, 'yaml')}`;
  return show?.(body) ?? '';
}
