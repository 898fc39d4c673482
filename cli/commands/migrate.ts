/**
 * `flotilla migrate --from DATA_DIR --to postgres://…` — moves a stopped single hub's data (apps
 * and revisions, devices, secrets, rollouts, accounts, device credentials, registration tokens,
 * the audit trail, and the logs, metrics and events of telemetry.db) and its signing key into an
 * empty PostgreSQL database, in one transaction checked by row counts and a sample before it
 * commits (broker/store/migrate/). The data dir is left as it was. `--dry-run` runs every check
 * and counts, and writes nothing; it exits as the copy would (2 when the copy would be refused).
 */
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import pino from 'pino';
import type { SingleHub } from '../../broker/store/migrate/single-hub.js';
import { createLogger } from '../../shared/logger.js';
import { type CliIO, globalOptions, render } from '../context.js';
import { CliError, EXIT_HUB_ERROR, EXIT_INVALID_INPUT } from '../errors.js';
import type { OutputFormat } from '../output.js';
import { formatTable } from '../output.js';

interface MigrateOptions {
  from: string;
  to: string;
  secretsKeyFile?: string;
  dryRun?: boolean;
}

interface TableLine {
  table: string;
  sqlite: number;
  /** Rows in the target: after the copy, or as a dry run found them (undefined: no such table yet). */
  postgres: number | undefined;
}

interface Run {
  io: CliIO;
  output: OutputFormat;
  options: MigrateOptions;
  hub: SingleHub;
  logger: ReturnType<typeof createLogger>;
}

export function registerMigrate(program: Command, io: CliIO): void {
  program
    .command('migrate')
    .description(
      "move a single hub's apps, devices, accounts, secrets, rollouts and telemetry from its data dir into an empty PostgreSQL database",
    )
    .addOption(new Option('--from <dir>', 'the data dir of the hub to move (its --data-dir); stop the hub first').makeOptionMandatory())
    .addOption(
      new Option('--to <url>', 'the empty PostgreSQL database the hub will use (postgres://role:password@host:5432/database)')
        .env('FLOTILLA_DATABASE_URL')
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--secrets-key-file <file>',
        'the key the hub sealed its secrets with (default <from>/secrets.key); FLOTILLA_SECRETS_KEY holds the key itself and wins',
      ).env('FLOTILLA_SECRETS_KEY_FILE'),
    )
    .addOption(new Option('--dry-run', 'check everything and count the rows, and copy nothing; exits 2 where the copy would be refused'))
    .action(async (options: MigrateOptions, command: Command) => {
      const { SingleHub } = await import('../../broker/store/migrate/single-hub.js');
      await translateErrors(async () => {
        const hub = SingleHub.open({ dataDir: options.from, keyFile: options.secretsKeyFile, envValue: process.env.FLOTILLA_SECRETS_KEY });
        try {
          const run: Run = {
            io,
            output: globalOptions(command).output,
            options,
            hub,
            logger: createLogger('warn', 'flotilla-migrate', pino.destination(2)),
          };
          await (options.dryRun ? dryRun(run) : copy(run));
        } finally {
          hub.close();
        }
      });
    });
}

async function dryRun({ io, output, options, hub, logger }: Run): Promise<void> {
  const { inspectTarget } = await import('../../broker/store/migrate/target.js');
  const { COPIED_TABLES } = await import('../../broker/store/migrate/tables.js');
  const target = await inspectTarget(options.to, logger);
  const tables = COPIED_TABLES.map((table) => ({ table: table.name, sqlite: hub.count(table), postgres: target.rows.get(table.name) }));
  const held = tables.filter((line) => (line.postgres ?? 0) > 0);
  const body = {
    dryRun: true,
    from: options.from,
    to: target.description,
    schemaVersion: hub.schemaVersion,
    tables,
    targetEmpty: held.length === 0,
  };
  render(io, output, body, () =>
    lines(
      'dry run: nothing was copied',
      countTable(tables),
      held.length === 0
        ? `${target.description} holds no hub's data: migrate can copy into it`
        : `${target.description} already holds a hub's data (${held.map((line) => `${line.table} ${line.postgres}`).join(', ')}): migrate would refuse it`,
    ),
  );
  // The refusal's exit code, so `migrate --dry-run && migrate` never runs a copy that would be refused.
  if (held.length > 0) {
    const { targetNotEmpty } = await import('../../broker/store/migrate/copy.js');
    throw targetNotEmpty(
      target.description,
      held.map((line) => `${line.table} ${line.postgres}`),
    );
  }
}

async function copy({ io, output, options, hub, logger }: Run): Promise<void> {
  const { openTarget } = await import('../../broker/store/migrate/target.js');
  const { copyToPostgres } = await import('../../broker/store/migrate/copy.js');
  const db = await openTarget(options.to, logger);
  try {
    const report = await copyToPostgres(hub, db);
    const tables = report.tables.map(({ table, source, target }) => ({ table, sqlite: source, postgres: target }));
    const to = db.target.description;
    const body = {
      from: options.from,
      to,
      schemaVersion: hub.schemaVersion,
      tables,
      sampled: report.sampled,
      signingKey: hub.signingKeyFile,
      secretsKey: hub.secretsKeySource,
    };
    render(io, output, body, () =>
      lines(
        `copied the hub in ${options.from} (schema version ${hub.schemaVersion}) to ${to}`,
        countTable(tables),
        `sample: ${report.sampled} rows equal`,
        report.signingKeyAdded
          ? `signing key: ${hub.signingKeyFile}, stored in hub_keys sealed with the secrets key from ${hub.secretsKeySource}`
          : `signing key: hub.db's hub_keys held ${hub.signingKeyFile} already`,
        `${options.from} is left as it was; keep it until the hub runs on ${to}`,
        `next: start the hub with --database on ${to} and the same secrets key; the admin key in ${join(options.from, 'admin.key')} still logs in`,
      ),
    );
  } finally {
    await db.close();
  }
}

function lines(...parts: (string | undefined)[]): string {
  return `${parts.filter((part) => part !== undefined).join('\n')}\n`;
}

function countTable(tables: readonly TableLine[]): string {
  return formatTable(
    ['TABLE', 'SQLITE', 'POSTGRESQL'],
    tables.map((line) => [line.table, `${line.sqlite}`, line.postgres === undefined ? '-' : `${line.postgres}`]),
  ).trimEnd();
}

/** The migration's own errors as the CLI's: refusals are input to fix (exit 2), the rest exit 1. */
async function translateErrors(work: () => Promise<void>): Promise<void> {
  const { MigrateMismatch, MigrateRefused } = await import('../../broker/store/migrate/errors.js');
  const { WrongSecretsKeyError } = await import('../../broker/store/secrets-key.js');
  const { DatabaseConfigError, DatabaseUnavailable } = await import('../../broker/store/pg/errors.js');
  try {
    await work();
  } catch (err) {
    if (err instanceof MigrateRefused) throw new CliError(err.message, EXIT_INVALID_INPUT, err.hints);
    if (err instanceof WrongSecretsKeyError) throw new CliError(err.message, EXIT_INVALID_INPUT);
    if (err instanceof MigrateMismatch) {
      throw new CliError(err.message, EXIT_HUB_ERROR, ['the copy was rolled back: the database holds what it held before']);
    }
    if (err instanceof DatabaseConfigError || err instanceof DatabaseUnavailable) throw new CliError(err.message, EXIT_HUB_ERROR);
    throw err;
  }
}
