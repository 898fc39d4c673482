/**
 * `flotilla top devices [--interval 2s] [--once]` — the newest metrics sample
 * of every device, one row each: DEVICE, ONLINE, CPU%, LOAD, MEM, DISK, TEMP,
 * CONTAINERS, AGE (of the sample), and what the device's link carried: LINK
 * IN/OUT, its MQTT bytes from and to the hub since the hub started, and
 * LINK/DAY, both directions averaged per day over that time (what a metered
 * link bills, less TCP/IP and TLS overhead).
 *
 * On a terminal the table is redrawn every interval until Ctrl-C, like
 * `top`; when stdout is not a terminal, with `--once`, or with `-o json|yaml`
 * (the hub's body), it is printed once.
 */
import type { Command } from 'commander';
import type { TopResult, TopRow } from '../../shared/index.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { parsePositiveDuration } from '../option-parsers.js';
import { formatAge, formatTable, yesNo } from '../output.js';
import { formatNumber, formatTime, formatUsage, interruptSignal, linkBytesPerDay, sleep } from '../telemetry.js';

/** Cursor home, then erase the screen: the next table replaces the last one in place. */
const CLEAR_SCREEN = '\u001b[H\u001b[2J';
const DEFAULT_INTERVAL = '2s';

interface TopOptions {
  interval: number;
  once?: boolean;
}

export function registerTop(program: Command, io: CliIO): void {
  const top = program.command('top').description('show resource usage');

  top
    .command('devices')
    .aliases(['device', 'dev'])
    .description('show the newest CPU, memory, disk and temperature of every device and what its link carried, refreshed on a terminal')
    .option('--interval <duration>', 'how often to refresh on a terminal', parsePositiveDuration, parsePositiveDuration(DEFAULT_INTERVAL))
    .option('--once', 'print the table once and exit, even on a terminal')
    .action(async (options: TopOptions, command: Command) => {
      const client = hubClient(command, io);
      const output = globalOptions(command).output;
      if (options.once || output !== 'table' || io.stdoutIsTTY !== true) {
        const result = await client.call('devices.top', {});
        if (output === 'table' && result.devices.length === 0) io.stderr('No devices found.\n');
        else render(io, output, result, () => topTable(result));
        return;
      }
      const interrupt = interruptSignal();
      try {
        while (!interrupt.signal.aborted) {
          const result = await client.call('devices.top', {});
          const online = result.devices.filter((device) => device.online).length;
          io.stdout(
            `${CLEAR_SCREEN}Every ${options.interval / 1000}s: flotilla top devices   ${formatTime(new Date().toISOString())}   ` +
              `${result.devices.length} devices, ${online} online\n\n${topTable(result)}`,
          );
          await sleep(options.interval, interrupt.signal);
        }
      } finally {
        interrupt.dispose();
      }
    });
}

export function topTable(result: TopResult, now: number = Date.now()): string {
  const devices = [...result.devices].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return formatTable(
    ['DEVICE', 'ONLINE', 'CPU%', 'LOAD', 'MEM', 'DISK', 'TEMP', 'CONTAINERS', 'AGE', 'LINK IN/OUT', 'LINK/DAY'],
    devices.map((row) => topCells(row, now)),
  );
}

function topCells(row: TopRow, now: number): string[] {
  return [
    row.id,
    yesNo(row.online),
    formatNumber(row.cpuPercent),
    formatNumber(row.load1, 2),
    formatUsage(row.memUsedBytes, row.memTotalBytes),
    formatUsage(row.diskUsedBytes, row.diskTotalBytes),
    row.temperatureC === undefined ? '-' : `${formatNumber(row.temperatureC)}°C`,
    row.containers === undefined ? '-' : String(row.containers),
    row.ts === undefined ? '<none>' : formatAge(row.ts, now),
    row.linkBytesIn === undefined || row.linkBytesOut === undefined ? '-' : formatUsage(row.linkBytesIn, row.linkBytesOut),
    formatUsage(linkBytesPerDay(row, now), undefined),
  ];
}
