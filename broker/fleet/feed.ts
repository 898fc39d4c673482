/**
 * The live fleet behind `GET /api/v1/devices?follow=true`: every device as a
 * FleetRow, and once a second what changed, computed once for all followers
 * together and only while someone follows.
 *
 * A tick reads every device row in one query (no desired documents: those
 * are sealed) and rebuilds a row only where something it is made of changed:
 * the stored text of the device's columns, its newest metrics sample, its
 * sparkline's sample count, its revocation or id clash. JSON columns are
 * parsed and a desired document opened only for those devices, so a quiet
 * fleet of thousands costs one query and a comparison of strings per tick.
 * A device goes offline in the store when the hub notices (its will, or its
 * connection closing), so followers see it within one tick.
 */
import type { Logger } from 'pino';
import type { DeviceState, FleetChanges, FleetRow, Labels, MetricsSample, OperatorLabels } from '../../shared/index.js';
import { type DeviceStore, effectiveLabels, type FleetDeviceRow } from '../store/devices.js';
import type { MetricsHistory } from './history.js';
import { type FleetRowInput, fleetChanges, fleetRow } from './rows.js';

export const FLEET_TICK_MS = 1000;

export interface FleetFeedDeps {
  devices: Pick<DeviceStore, 'fleetRows' | 'desiredApps'>;
  /** The newest metrics sample of each device (TelemetryIngest.latest). */
  latest: ReadonlyMap<string, MetricsSample>;
  history: MetricsHistory;
  /** Every revoked device → when (one query a tick); without it, none is. */
  revoked?: (() => Promise<ReadonlyMap<string, string>>) | undefined;
  /** Devices whose id two connections keep taking from each other; without it, none. */
  idClash?: ((deviceId: string) => boolean) | undefined;
  logger: Logger;
  tickMs?: number;
}

export type FleetListener = (changes: FleetChanges) => void;

/** What a row is made of: unchanged inputs, unchanged row. */
interface Entry {
  source: FleetDeviceRow;
  latest: MetricsSample | undefined;
  samples: number;
  revokedAt: string | undefined;
  idClash: boolean;
  /** Parsed once per change of the columns they come from. */
  labels: Labels;
  state: DeviceState | null;
  desired: { name: string; revision: number }[] | null;
  row: FleetRow;
  json: string;
}

export class FleetFeed {
  private entries = new Map<string, Entry>();
  private readonly listeners = new Set<FleetListener>();
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  /** The read in progress: reads never overlap, a second caller waits for the first and reads again. */
  private reading: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: FleetFeedDeps) {
    this.log = deps.logger.child({ component: 'fleet-feed' });
  }

  /**
   * Every device now, and from the next tick on what changed, to `listener`.
   * The snapshot is taken and the listener added in one synchronous step
   * after the read, so the changes that follow are changes from exactly this snapshot.
   */
  async follow(listener: FleetListener): Promise<{ snapshot: FleetRow[]; stop: () => void }> {
    if (this.listeners.size === 0) {
      // Nobody followed: the last view is stale. Nobody to tell what changed, either.
      await this.refresh();
      if (this.timer === undefined) {
        this.timer = setInterval(() => void this.tick(), this.deps.tickMs ?? FLEET_TICK_MS);
        this.timer.unref();
      }
    }
    this.listeners.add(listener);
    const snapshot = [...this.entries.values()].map((entry) => entry.row);
    return { snapshot, stop: () => this.unfollow(listener) };
  }

  get followers(): number {
    return this.listeners.size;
  }

  /** Reads the fleet again; returns what changed since the last read. */
  refresh(): Promise<FleetChanges> {
    const read = this.reading.then(
      () => this.read(),
      () => this.read(),
    );
    this.reading = read;
    return read;
  }

  private async read(): Promise<FleetChanges> {
    const revoked = (await this.deps.revoked?.()) ?? new Map<string, string>();
    const next = new Map<string, Entry>();
    for (const source of await this.deps.devices.fleetRows()) {
      next.set(source.id, await this.entry(source, this.entries.get(source.id), revoked.get(source.id)));
    }
    const changes = fleetChanges(this.entries, next);
    this.entries = next;
    return changes;
  }

  /** Stops ticking and forgets every follower (the hub is stopping). */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private unfollow(listener: FleetListener): void {
    this.listeners.delete(listener);
    if (this.listeners.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    let changes: FleetChanges;
    try {
      changes = await this.refresh();
    } catch (err) {
      this.log.error({ err }, 'reading the fleet failed; followers get the next tick');
      return;
    }
    if (changes.items.length === 0 && changes.removed.length === 0) return;
    for (const listener of [...this.listeners]) listener(changes);
  }

  private async entry(source: FleetDeviceRow, before: Entry | undefined, revokedAt: string | undefined): Promise<Entry> {
    const { id } = source;
    const latest = this.deps.latest.get(id);
    const history = this.deps.history.get(id);
    const samples = history?.samples ?? 0;
    const idClash = this.deps.idClash?.(id) ?? false;
    if (
      before &&
      before.latest === latest &&
      before.samples === samples &&
      before.revokedAt === revokedAt &&
      before.idClash === idClash &&
      sameSource(before.source, source)
    ) {
      return before;
    }
    const labelsChanged =
      !before || before.source.operator_labels !== source.operator_labels || before.source.reported_labels !== source.reported_labels;
    const labels = labelsChanged
      ? effectiveLabels(JSON.parse(source.reported_labels) as Labels, JSON.parse(source.operator_labels) as OperatorLabels)
      : before.labels;
    const state =
      before && before.source.state === source.state ? before.state : source.state ? (JSON.parse(source.state) as DeviceState) : null;
    const desired =
      before && before.source.desired_revision === source.desired_revision ? before.desired : await this.desiredApps(id, before);
    const input: FleetRowInput = {
      id,
      online: source.online === 1,
      lastSeen: source.last_seen,
      labels,
      host: state ? state.host : null,
      reported: state?.apps ?? [],
      desired,
      latest,
      history,
      revokedAt,
      idClash,
    };
    const row = fleetRow(input);
    return { source, latest, samples, revokedAt, idClash, labels, state, desired, row, json: JSON.stringify(row) };
  }
  /** One unreadable desired document must not stop the whole fleet's stream: that device shows its last known apps. */
  private async desiredApps(id: string, before: Entry | undefined): Promise<Entry['desired']> {
    try {
      return await this.deps.devices.desiredApps(id);
    } catch (err) {
      this.log.warn({ deviceId: id, err }, 'cannot read the desired document; the fleet row keeps the last known apps');
      return before?.desired ?? null;
    }
  }
}

function sameSource(a: FleetDeviceRow, b: FleetDeviceRow): boolean {
  return (
    a.online === b.online &&
    a.last_seen === b.last_seen &&
    a.desired_revision === b.desired_revision &&
    a.operator_labels === b.operator_labels &&
    a.reported_labels === b.reported_labels &&
    a.state === b.state
  );
}
