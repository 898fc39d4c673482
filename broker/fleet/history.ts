/**
 * The fleet's sparklines: each device's last FLEET_HISTORY_SAMPLES host
 * figures (CPU, memory and root disk percent), kept in memory. Fed by the
 * ingest after each commit (so a point is always a stored sample) and seeded
 * at start from stored samples in one bounded query, so a restarted hub
 * shows the same lines at once.
 */
import { FLEET_HISTORY_SAMPLES, type HostMetrics, type MetricsSample } from '../../shared/index.js';
import type { TelemetryIngest } from '../telemetry/ingest.js';
import type { TelemetryReads } from '../telemetry/reads.js';
import type { TelemetryStore } from '../telemetry/store.js';

type HostFigures = Pick<HostMetrics, 'cpuPercent' | 'memUsedBytes' | 'memTotalBytes' | 'disks'>;

export interface HostPercents {
  cpu: number;
  mem?: number;
  disk?: number;
}

export interface DeviceHistory {
  cpu: number[];
  mem: number[];
  disk: number[];
  /** Grows with every sample: the fleet view tells a changed history by it without comparing the arrays. */
  samples: number;
}

/** Percent with one decimal: what a sparkline can show, and no noise in the JSON. */
const round = (value: number) => Math.round(value * 10) / 10;

export function percentOf(used: number, total: number): number | undefined {
  return total > 0 ? round((used / total) * 100) : undefined;
}

/** The disk the device runs from: `root`, else the first one reported. */
export function rootDisk<T extends { name: string }>(disks: readonly T[]): T | undefined {
  return disks.find((disk) => disk.name === 'root') ?? disks[0];
}

export function hostPercents(host: HostFigures): HostPercents {
  const mem = percentOf(host.memUsedBytes, host.memTotalBytes);
  const disk = rootDisk(host.disks);
  const diskPercent = disk && percentOf(disk.usedBytes, disk.totalBytes);
  return {
    cpu: round(host.cpuPercent),
    ...(mem !== undefined ? { mem } : {}),
    ...(diskPercent !== undefined ? { disk: diskPercent } : {}),
  };
}

export class MetricsHistory {
  private readonly devices = new Map<string, DeviceHistory>();

  constructor(private readonly size = FLEET_HISTORY_SAMPLES) {}

  /** Appends one sample's figures; the oldest goes once the ring is full. A figure the sample lacks leaves its line as it was. */
  record(device: string, host: HostFigures): void {
    let history = this.devices.get(device);
    if (!history) {
      history = { cpu: [], mem: [], disk: [], samples: 0 };
      this.devices.set(device, history);
    }
    const point = hostPercents(host);
    this.push(history.cpu, point.cpu);
    if (point.mem !== undefined) this.push(history.mem, point.mem);
    if (point.disk !== undefined) this.push(history.disk, point.disk);
    history.samples++;
  }

  /**
   * Replaces the lines of the devices in `rows` (each device's oldest first)
   * with theirs, for a history that missed samples meanwhile (a replica's, of
   * devices connected to others, while nobody watched); each such device's
   * count still grows, so the fleet view sees the change.
   */
  reseed(rows: Iterable<{ device: string; host: HostFigures }>): void {
    const fresh = new MetricsHistory(this.size);
    for (const { device, host } of rows) fresh.record(device, host);
    for (const [device, history] of fresh.devices) {
      history.samples += this.devices.get(device)?.samples ?? 0;
      this.devices.set(device, history);
    }
  }

  get(device: string): Readonly<DeviceHistory> | undefined {
    return this.devices.get(device);
  }

  private push(line: number[], value: number): void {
    line.push(value);
    if (line.length > this.size) line.splice(0, line.length - this.size);
  }
}

/** Samples read at start, at most: enough for every known device twice over (some report faster than others), within a cap. */
const MAX_SEED_ROWS = 200_000;

/** How many stored samples seed the sparklines for a fleet of `knownDevices`. */
export function seedRows(knownDevices: number): number {
  return Math.min(MAX_SEED_ROWS, FLEET_HISTORY_SAMPLES * Math.max(knownDevices, 1) * 2);
}

/**
 * A history seeded from the telemetry file and fed by the ingest from now on:
 * subscribed before the broker accepts devices, so no sample falls between.
 */
export function startMetricsHistory(store: TelemetryStore, ingest: TelemetryIngest, knownDevices: number): MetricsHistory {
  const history = new MetricsHistory();
  for (const { device, host } of store.recentHostMetrics(FLEET_HISTORY_SAMPLES, seedRows(knownDevices))) history.record(device, host);
  ingest.onMetrics((samples) => {
    for (const sample of samples) history.record(sample.device, sample.host);
  });
  return history;
}

/**
 * The same, seeded through an asynchronous read (the replicas' shared
 * database). Samples the ingest commits while the read is under way are held
 * and recorded after the seed, so every line stays in time order.
 */
export async function loadMetricsHistory(reads: TelemetryReads, ingest: TelemetryIngest, knownDevices: number): Promise<MetricsHistory> {
  const history = new MetricsHistory();
  let held: MetricsSample[] | undefined = [];
  ingest.onMetrics((samples) => {
    if (held) held.push(...samples);
    else for (const sample of samples) history.record(sample.device, sample.host);
  });
  try {
    for (const { device, host } of await reads.recentHostMetrics(FLEET_HISTORY_SAMPLES, seedRows(knownDevices))) {
      history.record(device, host);
    }
  } finally {
    for (const sample of held) history.record(sample.device, sample.host);
    held = undefined;
  }
  return history;
}
