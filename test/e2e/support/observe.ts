/**
 * What an operator looks at while a device goes through a fault: `docker ps`
 * for an app's containers (also sampled in the background, to catch a
 * duplicate that lives only for a moment), `flotilla describe device`, the
 * hub's stored events, and the agent's own log lines.
 */
import type { DeviceView, EventRecord } from '../../../shared/index.js';
import type { HubProcess, ManagedProcess } from '../../support/processes.js';
import { runCli } from '../../support/processes.js';
import { storedEvents as storedEventsAt } from '../../support/stored-telemetry.js';
import { docker } from './docker-cli.js';

/** One line of `docker ps -a` for an app. */
export interface ContainerRow {
  id: string;
  /** Docker's name, without the leading "/". */
  name: string;
  /** created, running, exited, restarting… */
  state: string;
  /** The `flotilla.spec-hash` label: which version of the container this is. */
  specHash: string;
  image: string;
}

/** `docker ps -a` of one app's containers; `host` selects another engine (`unix:///…`). */
export async function appContainers(app: string, host?: string): Promise<ContainerRow[]> {
  const out = await docker(
    ...(host ? ['-H', host] : []),
    'ps',
    '-a',
    '--no-trunc',
    '--filter',
    `label=flotilla.app=${app}`,
    '--format',
    '{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label "flotilla.spec-hash"}}\t{{.Image}}',
  );
  if (out === '') return [];
  return out.split('\n').map((line) => {
    const [id = '', name = '', state = '', specHash = '', image = ''] = line.split('\t');
    return { id, name, state, specHash, image };
  });
}

/** Snapshots with two containers of the same version (spec hash): a duplicate. */
export function duplicates(snapshots: readonly ContainerRow[][]): ContainerRow[][] {
  return snapshots.filter((rows) => new Set(rows.map((r) => r.specHash)).size < rows.length);
}

/**
 * Polls `docker ps -a` for an app until stopped, keeping every snapshot, so a
 * test can assert that something never happened (two containers of one
 * version, two versions running at once) rather than only that it is gone now.
 */
export class ContainerSampler {
  readonly snapshots: ContainerRow[][] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    readonly app: string,
    host?: string,
    intervalMs = 200,
  ) {
    this.done = (async () => {
      while (!this.stopped) {
        // A failed `docker ps` (an engine restarting) is simply no snapshot.
        const rows = await appContainers(app, host).catch(() => undefined);
        if (rows) this.snapshots.push(rows);
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
    })();
  }

  async stop(): Promise<ContainerRow[][]> {
    this.stopped = true;
    await this.done;
    return this.snapshots;
  }

  /** The largest number of this app's containers seen running at once. */
  maxRunning(): number {
    return Math.max(0, ...this.snapshots.map((rows) => rows.filter((r) => r.state === 'running').length));
  }
}

/** `flotilla describe device ID -o json`. */
export async function describeDevice(hub: HubProcess, deviceId: string): Promise<DeviceView> {
  const out = await runCli(['--hub', hub.url, 'describe', 'device', deviceId, '-o', 'json']);
  if (out.code !== 0) throw new Error(`flotilla describe device ${deviceId}: exit ${out.code}: ${out.stderr}`);
  return JSON.parse(out.stdout) as DeviceView;
}

/** `flotilla describe device ID` as a person reads it. */
export async function describeDeviceText(hub: HubProcess, deviceId: string): Promise<string> {
  return (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).stdout;
}

/** The events the hub stored for a device (`GET /api/v1/events?device=ID&since=…`), oldest first. */
export async function storedEvents(hub: HubProcess, deviceId: string, since = '1h'): Promise<EventRecord[]> {
  return storedEventsAt(hub.url, deviceId, since);
}

/** The agent's pino lines (JSON, one per line), parsed; anything else it printed is skipped. */
export function agentLog(proc: ManagedProcess): { level: number; msg: string; [field: string]: unknown }[] {
  return proc.output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as { level: number; msg: string }];
      } catch {
        return [];
      }
    });
}
