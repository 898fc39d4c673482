/**
 * `flotilla events [DEVICE] [--app APP | --job JOB] [-f] [--since 1h] [--until 10m] [--tail N]` —
 * what agents reported doing (pulled, started, health-passed, rolled-back…), of
 * one device or the whole fleet, oldest first, as a table: TIME, DEVICE,
 * TYPE, APP, MESSAGE. `--job` keeps one job's events (its `job-` ones), which
 * `--app` of the same name leaves out, as `logs --job` does for lines.
 *
 * `-f` keeps printing new events under the same header, columns as wide as
 * the backlog made them (wider cells push the row out, as `kubectl get -w`
 * does). `-o json|yaml` prints the hub's body; when following, `-o json` is
 * one event per line (NDJSON) and `-o yaml` one document per event.
 */
import type { Command } from 'commander';
import type { EventRecord } from '../../shared/index.js';
import type { EventsQuery } from '../client.js';
import { type CliIO, globalOptions, hubClient } from '../context.js';
import { UsageError } from '../errors.js';
import { cell, formatStructured, type OutputFormat } from '../output.js';
import { backlogThenFollow, formatTime, parseTail, refuseUntilWithFollow, SINCE_HELP, UNTIL_HELP } from '../telemetry.js';

interface EventsOptions {
  app?: string;
  job?: string;
  follow?: boolean;
  since?: string;
  until?: string;
  tail?: number;
}

const HEADERS = ['TIME', 'DEVICE', 'TYPE', 'APP', 'MESSAGE'] as const;
/** Room for typical ids and types when following starts with no backlog to measure (the longest types: `image-download-completed`, `agent-upgrade-restarting`). */
const MIN_WIDTHS = [20, 12, 24, 12, 0] as const;
const GUTTER = '   ';

export function registerEvents(program: Command, io: CliIO): void {
  program
    .command('events')
    .argument('[device]', 'one device only')
    .description("list what devices' agents did (pulls, starts, health checks, rollbacks), oldest first")
    .option('--app <name>', "one app only (not a job's of the same name)")
    .option('--job <name>', "one job only (flotilla run): its job- events, not an app's of the same name")
    .option('-f, --follow', 'keep printing new events as devices send them, until Ctrl-C')
    .option('--since <time>', SINCE_HELP)
    .option('--until <time>', UNTIL_HELP)
    .option('--tail <n>', 'only the newest N events (default 100 without --since)', parseTail)
    .action(async (device: string | undefined, options: EventsOptions, command: Command) => {
      refuseUntilWithFollow(options);
      if (options.app !== undefined && options.job !== undefined) {
        throw new UsageError(`give --app ${options.app} or --job ${options.job}, not both: a job's events are not an app's`);
      }
      const client = hubClient(command, io);
      const output = globalOptions(command).output;
      const scope: EventsQuery = {
        ...(device !== undefined ? { device } : {}),
        ...(options.app !== undefined ? { app: options.app } : {}),
        ...(options.job !== undefined ? { job: options.job } : {}),
      };
      const query: EventsQuery = {
        ...scope,
        ...(options.since !== undefined ? { since: options.since } : {}),
        ...(options.until !== undefined ? { until: options.until } : {}),
        ...(options.tail !== undefined ? { tail: options.tail } : {}),
      };
      const following = options.follow === true;
      const printer = new EventPrinter(io, output, following);
      await backlogThenFollow(
        {
          backlog: async () => (await client.call('events.query', query)).events,
          follow: (afterId, signal) => client.followEvents(afterId === undefined ? query : { ...scope, afterId }, signal),
          printBacklog: (events) => printer.backlog(events),
          printRecord: (event) => printer.record(event),
        },
        following,
      );
    });
}

class EventPrinter {
  private widths: number[] = [...MIN_WIDTHS];

  constructor(
    private readonly io: CliIO,
    private readonly format: OutputFormat,
    private readonly following: boolean,
  ) {}

  backlog(events: readonly EventRecord[]): void {
    if (this.format !== 'table') {
      if (!this.following) this.io.stdout(formatStructured({ events }, this.format));
      else for (const event of events) this.record(event);
      return;
    }
    if (events.length === 0 && !this.following) {
      this.io.stderr('No events found.\n');
      return;
    }
    const rows = events.map(eventCells);
    const widths = HEADERS.map((header, i) => Math.max(header.length, ...rows.map((row) => [...(row[i] ?? '')].length)));
    this.widths = this.following ? widths.map((w, i) => Math.max(w, MIN_WIDTHS[i] ?? 0)) : widths;
    this.io.stdout(formatRow([...HEADERS], this.widths));
    for (const row of rows) this.io.stdout(formatRow(row, this.widths));
  }

  record(event: EventRecord): void {
    if (this.format === 'json') this.io.stdout(`${JSON.stringify(event)}\n`);
    else if (this.format === 'yaml') this.io.stdout(`---\n${formatStructured(event, 'yaml')}`);
    else this.io.stdout(formatRow(eventCells(event), this.widths));
  }
}

export function eventCells(event: EventRecord): string[] {
  const app = event.app === undefined ? '-' : event.container === undefined ? event.app : `${event.app}/${event.container}`;
  return [formatTime(event.ts), event.device, event.type, app, event.message].map(cell);
}

/** One table line with the given column widths; the last column is not padded. */
function formatRow(cells: readonly string[], widths: readonly number[]): string {
  const line = cells
    .map((value, i) => (i === cells.length - 1 ? value : value + ' '.repeat(Math.max(0, (widths[i] ?? 0) - [...value].length))))
    .join(GUTTER);
  return `${line.trimEnd()}\n`;
}
