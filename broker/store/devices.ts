/**
 * Devices as the hub knows them: labels (the agent's own, overridden by the
 * operator's), last reported state, online status, and the desired document
 * last published to each one.
 *
 * The desired document carries secret values (env, registry passwords,
 * secret files), so it is stored sealed (secret-cipher.ts): `desired_doc`
 * holds a BLOB, never the JSON. Its hash is sealed too: a plain SHA-256 of a
 * document whose every other field can be read from app_revisions would let
 * whoever holds hub.db test guesses of a weak password offline.
 */
import type { DesiredState, DeviceState, Labels, OperatorLabels } from '../../shared/index.js';

export interface StoredDevice {
  id: string;
  operatorLabels: OperatorLabels;
  reportedLabels: Labels;
  /** What scheduling matches against: reported labels, overridden by the operator's. */
  labels: Labels;
  online: boolean;
  lastSeen: string | null;
  state: DeviceState | null;
  observedRevision: number | null;
  desiredRevision: number;
  desiredHash: string | null;
  desired: DesiredState | null;
  createdAt: string;
}

/**
 * A device's row as the fleet view reads it every second: its JSON columns as
 * stored text (unparsed, so the caller can tell an unchanged row by comparing
 * strings), and no desired document (opening one is a decryption).
 */
export interface FleetDeviceRow {
  id: string;
  online: number;
  last_seen: string | null;
  operator_labels: string;
  reported_labels: string;
  state: string | null;
  desired_revision: number;
}

/** A device as a fleet-wide plan reads it: everything but its desired document, whose opening is a decryption and a parse per device. */
export type PlannedDevice = Omit<StoredDevice, 'desired'>;

export interface DeviceStore {
  list(): Promise<StoredDevice[]>;
  /** Every device as list() has it, by id, without its desired document (its hash and revision are there). */
  listForPlanning(): Promise<PlannedDevice[]>;
  get(id: string): Promise<StoredDevice | undefined>;
  /** Every device's id, online flag and when it was last heard from, without parsing anything else (Prometheus reads this at every scrape). */
  presence(): Promise<DevicePresence[]>;
  /** Every device, as the fleet view reads it (see FleetDeviceRow). */
  fleetRows(): Promise<FleetDeviceRow[]>;
  /** The apps (name and revision) of the desired document last issued to a device; null when none was. */
  desiredApps(id: string): Promise<{ name: string; revision: number }[] | null>;
  /**
   * Per app and reported phase, how many devices report it; a device that is
   * offline counts under `offline`, whatever it last reported. Only the
   * (app, phase) pairs that occur, ordered by app then phase.
   */
  appPhases(): Promise<{ app: string; phase: string; devices: number }[]>;
  /** Creates the device on first contact; returns true if it was new. */
  ensure(id: string): Promise<boolean>;
  recordState(state: DeviceState): Promise<void>;
  /** Online says the device is there now; offline (its will, say) keeps when it was last heard from. */
  recordOnline(id: string, online: boolean): Promise<void>;
  /** When devices were last heard from (broker/mqtt/presence.ts); an older time never overwrites a newer one. */
  recordLastSeen(touches: ReadonlyMap<string, string>): Promise<void>;
  /** A device's connection closed: offline. True if `id` is a device that was online. */
  recordDisconnected(id: string): Promise<boolean>;
  markAllOffline(): Promise<void>;
  setOperatorLabels(id: string, labels: OperatorLabels): Promise<void>;
  /** Stores the signed desired document issued to its device, sealed with the hub's secrets key. */
  recordDesired(desired: DesiredState, hash: string): Promise<void>;
  /**
   * Stores several devices' documents as recordDesired does, at once: one statement on PostgreSQL
   * for a fleet-wide pass's chunk, rather than a round trip per device.
   */
  recordDesiredMany(issued: readonly IssuedDesired[]): Promise<void>;
  /**
   * Records a state report as recordState does, creating the device on first contact as ensure
   * does, in one round trip; answers what the dispatcher decides a re-plan on.
   */
  recordStateReport(state: DeviceState): Promise<StateReportOutcome>;
}

export interface DevicePresence {
  id: string;
  online: boolean;
  /** When it was last heard from (for an offline device, about when it went away); null if it never connected. */
  lastSeen: string | null;
}

export interface IssuedDesired {
  desired: DesiredState;
  hash: string;
}

/** What a state report found stored before it. */
export interface StateReportOutcome {
  /** The report created the device. */
  isNew: boolean;
  /** The labels the device reported last time ({} for a new device). */
  previousLabels: Labels;
  /** The revision of the last desired document issued to it (0: none). */
  desiredRevision: number;
  /** Whether any desired document was issued to it. */
  desiredIssued: boolean;
  /** Whether its previous state report carried `downloads` (its agent can be sent a prefetch). */
  reportedDownloads: boolean;
}

export function effectiveLabels(reported: Labels, operator: OperatorLabels): Labels {
  const labels: Labels = { ...reported };
  for (const [key, value] of Object.entries(operator)) {
    if (value === null) delete labels[key];
    else labels[key] = value;
  }
  return labels;
}

/** A device row's plain columns as both engines store them; the sealed ones are each engine's to open. */
export interface DeviceColumns {
  id: string;
  operator_labels: string;
  reported_labels: string;
  online: number;
  last_seen: string | null;
  state: string | null;
  observed_revision: number | null;
  desired_revision: number;
  created_at: string;
}

export function deviceFromRow(row: DeviceColumns, desiredHash: string | null, desired: DesiredState | null): StoredDevice {
  const operatorLabels = JSON.parse(row.operator_labels) as OperatorLabels;
  const reportedLabels = JSON.parse(row.reported_labels) as Labels;
  return {
    id: row.id,
    operatorLabels,
    reportedLabels,
    labels: effectiveLabels(reportedLabels, operatorLabels),
    online: row.online === 1,
    lastSeen: row.last_seen,
    state: row.state ? (JSON.parse(row.state) as DeviceState) : null,
    observedRevision: row.observed_revision,
    desiredRevision: row.desired_revision,
    desiredHash,
    desired,
    createdAt: row.created_at,
  };
}
