/**
 * `flotilla logs DEVICE [APP | --job NAME] [-f] [--since 10m] [--until 5m] [--tail 100] [-t]` —
 * the containers' output as the device's agent shipped it, oldest first.
 *
 * One line per record, `docker compose logs` style:
 *
 *   gateway/main   | listening on :80
 *   gateway/main   | [stderr] upstream slow
 *   gateway/worker | [system] suppressed 1200 lines
 *
 * The prefix is `app/container`, and `job/NAME/container` for a job's line, so a
 * job named like an app is not taken for it (`--no-prefix` drops it); stderr lines carry
 * a `[stderr]` tag and the agent's own lines about the stream a `[system]`
 * tag (red and dim on a terminal); `-t` adds Docker's timestamp after the
 * prefix, as `docker compose logs -t` does. `-o json` prints one record per
 * line (NDJSON), so a follow can be piped to `jq`; `-o yaml` the hub's body,
 * or one document per record when following.
 *
 * `--job NAME` for a job the hub does not have is an error (exit 3) when no line of it
 * is stored either, and a warning before the lines when some are (a deleted job's stay).
 */
import type { Command } from 'commander';
import type { LogRecord } from '../../shared/index.js';
import { type HubClient, HubError } from '../client.js';
import { type CliIO, globalOptions, hubClient } from '../context.js';
import { CliError, EXIT_NOT_FOUND, UsageError } from '../errors.js';
import { cell, formatStructured, type OutputFormat } from '../output.js';
import { backlogThenFollow, parseTail, refuseUntilWithFollow, SINCE_HELP, UNTIL_HELP } from '../telemetry.js';

interface LogsOptions {
  job?: string;
  follow?: boolean;
  since?: string;
  until?: string;
  tail?: number;
  timestamps?: boolean;
  prefix: boolean;
}

export function registerLogs(program: Command, io: CliIO): void {
  program
    .command('logs')
    .argument('<device>', 'device id')
    .argument('[app]', 'one app only')
    .description("print the logs of a device's containers (all apps and jobs, one app, or one job)")
    .option('--job <name>', "only this job's lines (flotilla run), not an app's of the same name")
    .option('-f, --follow', 'keep printing new lines as the device sends them, until Ctrl-C')
    .option('--since <time>', SINCE_HELP)
    .option('--until <time>', UNTIL_HELP)
    .option('--tail <n>', 'only the newest N lines (default 100 without --since)', parseTail)
    .option('-t, --timestamps', "show Docker's timestamp of each line")
    .option('--no-prefix', 'do not prefix lines with app/container')
    .action(async (device: string, app: string | undefined, options: LogsOptions, command: Command) => {
      refuseUntilWithFollow(options);
      if (app !== undefined && options.job !== undefined) {
        throw new UsageError(`give an app (${app}) or --job ${options.job}, not both: a job's lines are not an app's`);
      }
      const client = hubClient(command, io);
      const output = globalOptions(command).output;
      // What a follow keeps selecting after the backlog (since, until and tail only shape the backlog).
      const subject = { ...(app !== undefined ? { app } : {}), ...(options.job !== undefined ? { job: options.job } : {}) };
      const query = {
        ...subject,
        ...(options.since !== undefined ? { since: options.since } : {}),
        ...(options.until !== undefined ? { until: options.until } : {}),
        ...(options.tail !== undefined ? { tail: options.tail } : {}),
      };
      const printer = new LogPrinter(io, output, {
        prefix: options.prefix,
        timestamps: options.timestamps === true,
        color: io.stdoutIsTTY === true && !process.env.NO_COLOR,
      });
      await backlogThenFollow(
        {
          backlog: async () => {
            const [lines, jobKnown] = await Promise.all([
              client.call('logs.query', { ...query, device }).then((body) => body.lines),
              options.job === undefined || jobOnHub(client, options.job),
            ]);
            if (!jobKnown) missingJob(io, options.job!, lines.length > 0);
            return lines;
          },
          follow: (afterId, signal) => client.followLogs(device, afterId === undefined ? query : { ...subject, afterId }, signal),
          printBacklog: (lines) => printer.backlog(lines, options.follow === true),
          printRecord: (line) => printer.record(line),
        },
        options.follow === true,
      );
    });
}

/**
 * Whether the hub has the job. The lines of a deleted job stay stored, so only jobs.get
 * tells a name typed wrong from a job that is gone; any answer but a 404 counts as there,
 * so a hub that cannot say does not stand between the operator and the lines.
 */
async function jobOnHub(client: HubClient, name: string): Promise<boolean> {
  try {
    await client.call('jobs.get', { name });
    return true;
  } catch (err) {
    if (err instanceof HubError && err.status === 404) return false;
    return true;
  }
}

/** A job the hub does not have: an error when there are no lines either (a name typed wrong), else a warning before them. */
function missingJob(io: CliIO, name: string, hasLines: boolean): void {
  if (!hasLines) throw new CliError(`no job ${name} on the hub`, EXIT_NOT_FOUND, ['the jobs it has: flotilla get jobs']);
  io.stderr(`warning: no job ${name} on the hub (deleted?): these are the lines stored from when it ran\n`);
}

export interface LogLineOptions {
  prefix: boolean;
  timestamps: boolean;
  color: boolean;
}

const RED = '\u001b[31m';
const DIM = '\u001b[2m';
const RESET = '\u001b[0m';

/** Prints records in the chosen format, keeping the prefixes aligned as new apps and containers appear. */
class LogPrinter {
  private prefixWidth = 0;

  constructor(
    private readonly io: CliIO,
    private readonly format: OutputFormat,
    private readonly options: LogLineOptions,
  ) {}

  backlog(lines: readonly LogRecord[], following: boolean): void {
    if (this.format === 'yaml' && !following) {
      this.io.stdout(formatStructured({ lines }, 'yaml'));
      return;
    }
    this.prefixWidth = Math.max(this.prefixWidth, ...lines.map((line) => prefixOf(line).length));
    for (const line of lines) this.record(line);
  }

  record(line: LogRecord): void {
    if (this.format === 'json') this.io.stdout(`${JSON.stringify(line)}\n`);
    else if (this.format === 'yaml') this.io.stdout(`---\n${formatStructured(line, 'yaml')}`);
    else {
      this.prefixWidth = Math.max(this.prefixWidth, prefixOf(line).length);
      this.io.stdout(formatLogLine(line, this.options, this.prefixWidth));
    }
  }
}

function prefixOf(line: LogRecord): string {
  return cell(`${line.job ? 'job/' : ''}${line.app}/${line.container}`);
}

/** One record as a terminal line, ending in `\n`. Device text goes through `cell()`. */
export function formatLogLine(line: LogRecord, options: LogLineOptions, prefixWidth = 0): string {
  let out = '';
  if (options.prefix) out += `${prefixOf(line).padEnd(prefixWidth)} | `;
  if (options.timestamps) out += `${cell(line.ts)} `;
  const paint = (code: string, text: string) => (options.color ? `${code}${text}${RESET}` : text);
  let text = cell(line.line);
  if (line.stream === 'system' && text === '' && line.suppressed !== undefined) text = `suppressed ${line.suppressed} lines`;
  if (line.truncated) text += ' [truncated]';
  if (line.stream === 'stderr') out += `${paint(RED, '[stderr]')} ${text}`;
  else if (line.stream === 'system') out += paint(DIM, `[system] ${text}`);
  else out += text;
  return `${out}\n`;
}
