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
import type { Db } from './db.js';
import { desiredDocAad, desiredHashAad, type SecretCipher } from './secret-cipher.js';

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

interface DeviceRow {
  id: string;
  operator_labels: string;
  reported_labels: string;
  online: number;
  last_seen: string | null;
  state: string | null;
  observed_revision: number | null;
  desired_revision: number;
  desired_hash: Buffer | string | null;
  desired_doc: Buffer | string | null;
  created_at: string;
}

export class DeviceStore {
  private readonly selectAll;
  private readonly selectOne;
  private readonly insert;
  private readonly updateState;
  private readonly updateOnline;
  private readonly updateOffline;
  private readonly updateLastSeen;
  private readonly writeLastSeen;
  private readonly updateOperatorLabels;
  private readonly markOffline;
  private readonly updateDesired;
  private readonly selectPresence;
  private readonly selectAppPhases;
  private readonly selectFleetRows;
  private readonly selectDesiredDoc;

  constructor(
    db: Db,
    private readonly cipher: SecretCipher,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.selectAll = db.prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY id');
    this.selectOne = db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?');
    this.insert = db.prepare('INSERT INTO devices (id, created_at) VALUES (?, ?) ON CONFLICT(id) DO NOTHING');
    this.updateState = db.prepare(
      'UPDATE devices SET state = ?, observed_revision = ?, reported_labels = ?, online = 1, last_seen = ? WHERE id = ?',
    );
    this.updateOnline = db.prepare('UPDATE devices SET online = 1, last_seen = ? WHERE id = ?');
    this.updateOffline = db.prepare('UPDATE devices SET online = 0 WHERE id = ? AND online = 1');
    this.updateLastSeen = db.prepare('UPDATE devices SET last_seen = ? WHERE id = ? AND (last_seen IS NULL OR last_seen < ?)');
    this.writeLastSeen = db.transaction((touches: ReadonlyMap<string, string>) => {
      for (const [id, at] of touches) this.updateLastSeen.run(at, id, at);
    });
    this.markOffline = db.prepare('UPDATE devices SET online = 0');
    this.updateOperatorLabels = db.prepare('UPDATE devices SET operator_labels = ? WHERE id = ?');
    this.updateDesired = db.prepare('UPDATE devices SET desired_revision = ?, desired_hash = ?, desired_doc = ? WHERE id = ?');
    this.selectPresence = db.prepare<[], { id: string; online: number }>('SELECT id, online FROM devices ORDER BY id');
    this.selectFleetRows = db.prepare<[], FleetDeviceRow>(
      'SELECT id, online, last_seen, operator_labels, reported_labels, state, desired_revision FROM devices ORDER BY id',
    );
    this.selectDesiredDoc = db.prepare<[string], Pick<DeviceRow, 'id' | 'desired_doc'>>('SELECT id, desired_doc FROM devices WHERE id = ?');
    // SQLite reads the apps out of the stored state, so a scrape parses no JSON in JS.
    this.selectAppPhases = db.prepare<[], { app: string; phase: string; devices: number }>(
      `SELECT json_extract(a.value, '$.name') AS app,
              CASE WHEN d.online = 1 THEN json_extract(a.value, '$.phase') ELSE 'offline' END AS phase,
              COUNT(*) AS devices
         FROM devices d, json_each(d.state, '$.apps') a
        WHERE d.state IS NOT NULL
        GROUP BY 1, 2
        ORDER BY 1, 2`,
    );
  }

  list(): StoredDevice[] {
    return this.selectAll.all().map((row) => this.toDevice(row));
  }

  get(id: string): StoredDevice | undefined {
    const row = this.selectOne.get(id);
    return row ? this.toDevice(row) : undefined;
  }

  /** Every device's id and online flag, without parsing anything else (Prometheus reads this at every scrape). */
  presence(): { id: string; online: boolean }[] {
    return this.selectPresence.all().map((row) => ({ id: row.id, online: row.online === 1 }));
  }

  /** Every device, as the fleet view reads it (see FleetDeviceRow). */
  fleetRows(): FleetDeviceRow[] {
    return this.selectFleetRows.all();
  }

  /** The apps (name and revision) of the desired document last issued to a device; null when none was. */
  desiredApps(id: string): { name: string; revision: number }[] | null {
    const row = this.selectDesiredDoc.get(id);
    const desired = row ? this.openDesired(row) : null;
    return desired ? desired.apps.map((app) => ({ name: app.name, revision: app.revision })) : null;
  }

  /**
   * Per app and reported phase, how many devices report it; a device that is
   * offline counts under `offline`, whatever it last reported. Only the
   * (app, phase) pairs that occur.
   */
  appPhases(): { app: string; phase: string; devices: number }[] {
    return this.selectAppPhases.all();
  }

  /** Creates the device on first contact; returns true if it was new. */
  ensure(id: string): boolean {
    return this.insert.run(id, this.now().toISOString()).changes > 0;
  }

  recordState(state: DeviceState): void {
    this.updateState.run(
      JSON.stringify(state),
      state.observedRevision,
      JSON.stringify(state.labels),
      this.now().toISOString(),
      state.deviceId,
    );
  }

  /** Online says the device is there now; offline (its will, say) keeps when it was last heard from. */
  recordOnline(id: string, online: boolean): void {
    if (online) this.updateOnline.run(this.now().toISOString(), id);
    else this.updateOffline.run(id);
  }

  /** When devices were last heard from (broker/mqtt/presence.ts); an older time never overwrites a newer one. */
  recordLastSeen(touches: ReadonlyMap<string, string>): void {
    this.writeLastSeen(touches);
  }

  /** A device's connection closed: offline. True if `id` is a device that was online. */
  recordDisconnected(id: string): boolean {
    return this.updateOffline.run(id).changes > 0;
  }

  markAllOffline(): void {
    this.markOffline.run();
  }

  setOperatorLabels(id: string, labels: OperatorLabels): void {
    this.updateOperatorLabels.run(JSON.stringify(labels), id);
  }

  recordDesired(desired: DesiredState, hash: string): void {
    const sealed = this.cipher.sealText(JSON.stringify(desired), desiredDocAad(desired.deviceId));
    this.updateDesired.run(desired.revision, this.cipher.sealText(hash, desiredHashAad(desired.deviceId)), sealed, desired.deviceId);
  }

  private openDesired(row: Pick<DeviceRow, 'id' | 'desired_doc'>): DesiredState | null {
    if (row.desired_doc === null) return null;
    if (typeof row.desired_doc === 'string')
      throw new Error(`device "${row.id}": desired document stored unsealed; the hub seals such rows at start`);
    return JSON.parse(this.cipher.openText(row.desired_doc, desiredDocAad(row.id))) as DesiredState;
  }

  private openHash(row: DeviceRow): string | null {
    if (row.desired_hash === null) return null;
    if (typeof row.desired_hash === 'string')
      throw new Error(`device "${row.id}": desired hash stored unsealed; the hub seals such rows at start`);
    return this.cipher.openText(row.desired_hash, desiredHashAad(row.id));
  }

  private toDevice(row: DeviceRow): StoredDevice {
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
      desiredHash: this.openHash(row),
      desired: this.openDesired(row),
      createdAt: row.created_at,
    };
  }
}

export function effectiveLabels(reported: Labels, operator: OperatorLabels): Labels {
  const labels: Labels = { ...reported };
  for (const [key, value] of Object.entries(operator)) {
    if (value === null) delete labels[key];
    else labels[key] = value;
  }
  return labels;
}
