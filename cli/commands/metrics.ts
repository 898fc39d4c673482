/**
 * `flotilla metrics DEVICE [--since 1h] [--tail N]` — a device's metrics
 * samples, oldest first (the last hour by default): TIME, CPU%, LOAD, MEM,
 * DISK (the root filesystem), TEMP, NET RX/TX. The network columns are rates
 * since the sample before (the device sends counters since boot), `-` for the
 * first sample and across a reboot.
 *
 * Below, the newest sample per container, `docker stats` style, and the
 * agent's own footprint; last, what the device's link carried since the hub
 * started (MQTT bytes each way, and per day). `-o json|yaml` prints the
 * hub's body: every sample with every field.
 */
import type { Command } from 'commander';
import type { LinkUsage, MetricsResult, MetricsSample } from '../../shared/index.js';
import { formatBytes } from '../../shared/index.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { formatTable } from '../output.js';
import { formatNumber, formatRate, formatTime, formatUsage, linkBytesPerDay, parseTail, rate, SINCE_HELP } from '../telemetry.js';

interface MetricsOptions {
  since?: string;
  tail?: number;
}

export function registerMetrics(program: Command, io: CliIO): void {
  program
    .command('metrics')
    .argument('<device>', 'device id')
    .description("show a device's metrics samples and the newest per-container usage")
    .option('--since <time>', `${SINCE_HELP} (default 1h)`)
    .option('--tail <n>', 'only the newest N samples', parseTail)
    .action(async (device: string, options: MetricsOptions, command: Command) => {
      const result = await hubClient(command, io).call('metrics.query', {
        device,
        ...(options.since !== undefined ? { since: options.since } : {}),
        ...(options.tail !== undefined ? { tail: options.tail } : {}),
      });
      const output = globalOptions(command).output;
      if (output === 'table' && result.samples.length === 0) io.stderr(`No metrics samples for device ${device} in that time.\n`);
      else render(io, output, result, () => metricsText(result));
    });
}

export function metricsText(result: MetricsResult, now = Date.now()): string {
  let out = samplesTable(result.samples);
  const link = linkText(result, now);
  const newest = result.samples.at(-1);
  if (newest === undefined) return link ? `${out}\n${link}` : out;
  out += `\nContainers at ${formatTime(newest.ts)}:\n`;
  out +=
    newest.containers.length === 0
      ? '  <none>\n'
      : formatTable(
          ['APP', 'CONTAINER', 'CPU%', 'MEM', 'NET RX/TX', 'BLOCK I/O', 'PIDS', 'RESTARTS'],
          newest.containers.map((c) => [
            c.app,
            c.container,
            formatNumber(c.cpuPercent),
            formatUsage(c.memBytes, c.memLimitBytes),
            `${formatBytes(c.netRxBytes)}/${formatBytes(c.netTxBytes)}`,
            `${formatBytes(c.blkReadBytes)}/${formatBytes(c.blkWriteBytes)}`,
            String(c.pids),
            String(c.restartCount),
          ]),
        );
  if (newest.agent) {
    const agent = newest.agent;
    out += `\nAgent: ${formatBytes(agent.rssBytes)} resident, ${formatNumber(agent.cpuPercent)}% CPU, ${agent.logLinesDropped} log lines dropped since start\n`;
    if (agent.outbox) {
      const { messages, bytes, dropped } = agent.outbox;
      out += `Outbox: ${messages} messages (${formatBytes(bytes)}) waiting for the hub, ${dropped} dropped since start\n`;
    }
  }
  return link ? `${out}\n${link}` : out;
}

/** What the device's link carried since the hub started counting (as LINK IN/OUT and LINK/DAY in `top`). */
function linkText(usage: LinkUsage, now: number): string | undefined {
  if (usage.linkBytesIn === undefined || usage.linkBytesOut === undefined) return undefined;
  const perDay = linkBytesPerDay(usage, now);
  return `Link: ${formatBytes(usage.linkBytesIn)} from the device, ${formatBytes(usage.linkBytesOut)} to it since ${formatTime(usage.linkBytesSince)}${perDay === undefined ? '' : ` (${formatBytes(perDay)}/day)`}\n`;
}

export function samplesTable(samples: readonly MetricsSample[]): string {
  return formatTable(
    ['TIME', 'CPU%', 'LOAD', 'MEM', 'DISK', 'TEMP', 'NET RX/TX'],
    samples.map((sample, i) => {
      const host = sample.host;
      const root = host.disks.find((disk) => disk.name === 'root') ?? host.disks[0];
      const previous = samples[i - 1];
      const rx = previous && rate({ value: previous.host.netRxBytes, ts: previous.ts }, { value: host.netRxBytes, ts: sample.ts });
      const tx = previous && rate({ value: previous.host.netTxBytes, ts: previous.ts }, { value: host.netTxBytes, ts: sample.ts });
      return [
        formatTime(sample.ts),
        formatNumber(host.cpuPercent),
        formatNumber(host.load1, 2),
        formatUsage(host.memUsedBytes, host.memTotalBytes),
        formatUsage(root?.usedBytes, root?.totalBytes),
        host.temperatureC === undefined ? '-' : `${formatNumber(host.temperatureC)}°C`,
        rx === undefined && tx === undefined ? '-' : `${formatRate(rx)} / ${formatRate(tx)}`,
      ];
    }),
  );
}
