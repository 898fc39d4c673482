/**
 * `flotilla audit [--device D] [--since 1h] [--limit N]`: the hub's record of
 * remote-access sessions (exec, shell, port-forward) and refused attempts,
 * newest first: who, which device, what, how it ended, the command's exit
 * code, bytes each way and how long it ran. Admin only.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { AuditRecord } from '../../shared/api/results.js';
import { formatBytes } from '../../shared/index.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { formatTable } from '../output.js';
import { formatTime, SINCE_HELP } from '../telemetry.js';

interface AuditOptions {
  device?: string;
  since?: string;
  limit?: number;
}

const HEADERS = ['TIME', 'ACTOR', 'DEVICE', 'KIND', 'WHAT', 'OUTCOME', 'EXIT', 'BYTES ↑/↓', 'DURATION'];

function parseLimit(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 10000) throw new InvalidArgumentError('expected 1-10000.');
  return Number(value);
}

export function registerAudit(program: Command, io: CliIO): void {
  program
    .command('audit')
    .description('list remote-access sessions (exec, shell, port-forward) and refused attempts, newest first (admin)')
    .option('--device <id>', 'one device only')
    .option('--since <time>', SINCE_HELP)
    .option('--limit <n>', 'at most N records (default 100)', parseLimit)
    .addHelpText(
      'after',
      `
BYTES ↑/↓: session data from the device to the opener / to the device, as the hub relayed it.
OUTCOME: open (still running), exited (EXIT shows the code), closed, failed, link_lost, idle, hub_lost (its hub or replica stopped), denied.`,
    )
    .action(async (options: AuditOptions, command: Command) => {
      const body = await hubClient(command, io).call('audit.list', {
        ...(options.device !== undefined ? { device: options.device } : {}),
        ...(options.since !== undefined ? { since: options.since } : {}),
        ...(options.limit !== undefined ? { limit: options.limit } : {}),
      });
      const format = globalOptions(command).output;
      if (format === 'table' && body.items.length === 0) {
        io.stderr('No sessions found.\n');
        return;
      }
      render(io, format, body, () =>
        formatTable(
          HEADERS,
          body.items.map((record) => auditCells(record)),
        ),
      );
    });
}

export function auditCells(record: AuditRecord, now = Date.now()): string[] {
  return [
    formatTime(record.startedAt),
    record.actor,
    record.device,
    record.kind,
    record.reason !== undefined && record.outcome === 'denied' ? `${record.what} (${record.reason})` : record.what,
    record.outcome,
    record.exitCode === undefined ? '-' : String(record.exitCode),
    record.outcome === 'denied' ? '-' : `${formatBytes(record.bytesUp)}/${formatBytes(record.bytesDown)}`,
    formatDuration(record, now),
  ];
}

/** `1h2m`, `3m5s`, `12s`, `0.4s`; a running session's time so far; `-` for a refusal. */
export function formatDuration(record: Pick<AuditRecord, 'startedAt' | 'endedAt' | 'outcome'>, now = Date.now()): string {
  if (record.outcome === 'denied') return '-';
  const start = Date.parse(record.startedAt);
  const end = record.endedAt === undefined ? now : Date.parse(record.endedAt);
  if (Number.isNaN(start) || Number.isNaN(end)) return '-';
  const ms = Math.max(0, end - start);
  const text = ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : clock(Math.round(ms / 1000));
  return record.endedAt === undefined ? `${text} so far` : text;
}

function clock(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
