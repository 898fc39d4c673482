/**
 * `flotilla get devices|apps|jobs [NAME]` — one row per object, kubectl style.
 * `-o json|yaml` prints the hub's body unchanged (`{items}` for a list).
 * `get jobs -w` prints the table, then a row for each job that changes, until Ctrl-C.
 */
import type { Command } from 'commander';
import { summarizeApp } from '../../shared/index.js';
import { agentVersionCell } from '../agent-version-text.js';
import type { AppSummary, Device } from '../client.js';
import { type CliIO, globalOptions, hubClient, render } from '../context.js';
import { formatAge, formatLabels, formatTable, yesNo } from '../output.js';
import { registerGetSecrets } from './secret.js';
import { registerGetServiceAccounts } from './serviceaccount.js';
import { registerGetTokens } from './token.js';

export function registerGet(program: Command, io: CliIO): void {
  const get = program.command('get').description('list devices, apps, jobs, secrets, registration tokens or service accounts');

  get
    .command('devices')
    .aliases(['device', 'dev'])
    .argument('[name]', 'one device only')
    .description('list devices: online, apps running, revision observed/desired, agent version (and upgrade), labels, last seen')
    .action(async (name: string | undefined, _options: unknown, command: Command) => {
      const client = hubClient(command, io);
      const { output } = globalOptions(command);
      if (name !== undefined) {
        const device = await client.call('devices.get', { id: name });
        render(io, output, device, () => devicesTable([device]));
        return;
      }
      const list = await client.call('devices.list', {});
      if (output === 'table' && list.items.length === 0) io.stderr('No devices found.\n');
      else render(io, output, list, () => devicesTable(list.items));
    });

  get
    .command('apps')
    .alias('app')
    .argument('[name]', 'one app only')
    .description('list apps: revision, where they are scheduled, devices running/matched')
    .action(async (name: string | undefined, _options: unknown, command: Command) => {
      const client = hubClient(command, io);
      const { output } = globalOptions(command);
      if (name !== undefined) {
        const app = await client.call('apps.get', { name });
        render(io, output, app, () => appsTable([summarizeApp(app)]));
        return;
      }
      const list = await client.call('apps.list', {});
      if (output === 'table' && list.items.length === 0) io.stderr('No apps found.\n');
      else render(io, output, list, () => appsTable(list.items));
    });

  get
    .command('jobs')
    .alias('job')
    .argument('[name]', 'one job only')
    .option('-w, --watch', 'print the table, then a row again for each job that changes, until Ctrl-C')
    .description('list jobs, newest first: phase, devices succeeded of all (COMPLETIONS), counts per state, age, time left to the deadline')
    .action(async (name: string | undefined, options: { watch?: boolean }, command: Command) => {
      const client = hubClient(command, io);
      const { output } = globalOptions(command);
      const { jobsTable } = await import('../job-text.js');
      if (options.watch) {
        const { watchJobList } = await import('./job-watch.js');
        if (name !== undefined)
          await watchJobList(
            io,
            output,
            () => client.call('jobs.get', { name }),
            (job) => [job],
          );
        else
          await watchJobList(
            io,
            output,
            () => client.call('jobs.list', {}),
            (list) => list.items,
          );
        return;
      }
      if (name !== undefined) {
        const job = await client.call('jobs.get', { name });
        render(io, output, job, () => jobsTable([job]));
        return;
      }
      const list = await client.call('jobs.list', {});
      if (output === 'table' && list.items.length === 0) io.stderr('No jobs found.\n');
      else render(io, output, list, () => jobsTable(list.items));
    });

  registerGetTokens(get, io);
  registerGetServiceAccounts(get, io);
  registerGetSecrets(get, io);
}

/**
 * VERSION and ARCH are the agent's, as it last reported them (`-` before its
 * first report); VERSION carries the agent's own upgrade marker beside it
 * (`0.2.0 → 0.3.0 UPGRADING`, `0.2.0 ROLLED-BACK 0.3.0`: agent-version-text.ts). ONLINE is `revoked` for a revoked device ("no" alone would read as a device
 * that may come back), and `id clash` while two devices take one id from each
 * other (a "yes" would hide that two are fighting over it).
 */
export function devicesTable(devices: readonly Device[], now: number = Date.now()): string {
  return formatTable(
    ['NAME', 'ONLINE', 'APPS', 'REVISION', 'VERSION', 'ARCH', 'LABELS', 'LAST SEEN'],
    devices.map((device) => [
      device.id,
      device.revokedAt !== undefined ? 'revoked' : device.idClash !== undefined ? 'id clash' : yesNo(device.online),
      `${device.apps.filter((app) => app.phase === 'running').length}/${device.apps.length} running`,
      `${device.observedRevision ?? '-'}/${device.desiredRevision}`,
      agentVersionCell(device),
      device.host?.arch ?? '-',
      formatLabels(device.labels),
      device.lastSeen === null ? '<never>' : formatAge(device.lastSeen, now),
    ]),
  );
}

/** A SCOPE column only where some app was applied from a folder with a prune scope: most fleets have none. */
export function appsTable(apps: readonly AppSummary[], now: number = Date.now()): string {
  const scoped = apps.some((app) => app.scope !== undefined);
  return formatTable(
    ['NAME', 'REVISION', 'SELECTOR', ...(scoped ? ['SCOPE'] : []), 'CONTAINERS', 'DEVICES', 'AGE'],
    apps.map((app) => [
      app.name,
      String(app.revision),
      formatScheduling(app.scheduling),
      ...(scoped ? [app.scope ?? '<none>'] : []),
      String(app.containers),
      `${app.devices.running}/${app.devices.matched}`,
      formatAge(app.createdAt, now),
    ]),
  );
}

/**
 * `site=roof,arch=arm64`, `devices: a,b`, or `<all>` for `selectors: {}`.
 * With both, a device must be listed *and* match, so both are shown.
 */
export function formatScheduling(scheduling: AppSummary['scheduling']): string {
  const parts: string[] = [];
  if (scheduling.devices) parts.push(`devices: ${scheduling.devices.join(',')}`);
  if (scheduling.selectors) {
    const selector = Object.keys(scheduling.selectors).length === 0 ? '<all>' : formatLabels(scheduling.selectors);
    if (!(selector === '<all>' && scheduling.devices)) parts.push(selector);
  }
  return parts.length === 0 ? '<none>' : parts.join('; ');
}
