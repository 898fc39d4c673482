/** The SQLite engine of DeviceStore (hub.db). */
import type { DesiredState, DeviceState, Labels, OperatorLabels } from '../../../shared/index.js';
import {
  type DeviceColumns,
  type DevicePresence,
  type DeviceStore,
  deviceFromRow,
  type FleetDeviceRow,
  type IssuedDesired,
  type PlannedDevice,
  type StateReportOutcome,
  type StoredDevice,
} from '../devices.js';
import { desiredDocAad, desiredHashAad, type SecretCipher } from '../secret-cipher.js';
import type { Db } from './db.js';

interface DeviceRow extends DeviceColumns {
  desired_hash: Buffer | string | null;
  desired_doc: Buffer | string | null;
}

export class SqliteDeviceStore implements DeviceStore {
  private readonly selectAll;
  private readonly selectAllForPlanning;
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
  private readonly selectReportBasis;
  private readonly writeDesiredMany;
  private readonly writeStateReport;

  constructor(
    db: Db,
    private readonly cipher: SecretCipher,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.selectAll = db.prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY id');
    this.selectAllForPlanning = db.prepare<[], Omit<DeviceRow, 'desired_doc'>>(
      'SELECT id, operator_labels, reported_labels, online, last_seen, state, observed_revision, desired_revision, desired_hash, created_at FROM devices ORDER BY id',
    );
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
    this.selectPresence = db.prepare<[], { id: string; online: number; last_seen: string | null }>(
      'SELECT id, online, last_seen FROM devices ORDER BY id',
    );
    this.selectFleetRows = db.prepare<[], FleetDeviceRow>(
      'SELECT id, online, last_seen, operator_labels, reported_labels, state, desired_revision FROM devices ORDER BY id',
    );
    this.selectDesiredDoc = db.prepare<[string], Pick<DeviceRow, 'id' | 'desired_doc'>>('SELECT id, desired_doc FROM devices WHERE id = ?');
    this.selectReportBasis = db.prepare<
      [string],
      { reported_labels: string; desired_revision: number; desired_issued: number; reported_downloads: number }
    >(
      `SELECT reported_labels, desired_revision, desired_hash IS NOT NULL AS desired_issued,
              json_extract(state, '$.downloads') IS NOT NULL AS reported_downloads
         FROM devices WHERE id = ?`,
    );
    this.writeDesiredMany = db.transaction((issued: readonly IssuedDesired[]) => {
      for (const { desired, hash } of issued) this.writeDesired(desired, hash);
    });
    this.writeStateReport = db.transaction((state: DeviceState): StateReportOutcome => {
      const previous = this.selectReportBasis.get(state.deviceId);
      const at = this.now().toISOString();
      if (!previous) this.insert.run(state.deviceId, at);
      this.updateState.run(JSON.stringify(state), state.observedRevision, JSON.stringify(state.labels), at, state.deviceId);
      return {
        isNew: previous === undefined,
        previousLabels: previous ? (JSON.parse(previous.reported_labels) as Labels) : {},
        desiredRevision: previous?.desired_revision ?? 0,
        desiredIssued: previous?.desired_issued === 1,
        reportedDownloads: previous?.reported_downloads === 1,
      };
    });
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

  async list(): Promise<StoredDevice[]> {
    return this.selectAll.all().map((row) => this.toDevice(row));
  }

  async listForPlanning(): Promise<PlannedDevice[]> {
    return this.selectAllForPlanning.all().map((row) => {
      const { desired: _, ...device } = deviceFromRow(row, this.openHash(row), null);
      return device;
    });
  }

  async get(id: string): Promise<StoredDevice | undefined> {
    const row = this.selectOne.get(id);
    return row ? this.toDevice(row) : undefined;
  }

  async presence(): Promise<DevicePresence[]> {
    return this.selectPresence.all().map((row) => ({ id: row.id, online: row.online === 1, lastSeen: row.last_seen }));
  }

  async fleetRows(): Promise<FleetDeviceRow[]> {
    return this.selectFleetRows.all();
  }

  async desiredApps(id: string): Promise<{ name: string; revision: number }[] | null> {
    const row = this.selectDesiredDoc.get(id);
    const desired = row ? this.openDesired(row) : null;
    return desired ? desired.apps.map((app) => ({ name: app.name, revision: app.revision })) : null;
  }

  async appPhases(): Promise<{ app: string; phase: string; devices: number }[]> {
    return this.selectAppPhases.all();
  }

  async ensure(id: string): Promise<boolean> {
    return this.insert.run(id, this.now().toISOString()).changes > 0;
  }

  async recordState(state: DeviceState): Promise<void> {
    this.updateState.run(
      JSON.stringify(state),
      state.observedRevision,
      JSON.stringify(state.labels),
      this.now().toISOString(),
      state.deviceId,
    );
  }

  async recordOnline(id: string, online: boolean): Promise<void> {
    if (online) this.updateOnline.run(this.now().toISOString(), id);
    else this.updateOffline.run(id);
  }

  async recordLastSeen(touches: ReadonlyMap<string, string>): Promise<void> {
    this.writeLastSeen(touches);
  }

  async recordDisconnected(id: string): Promise<boolean> {
    return this.updateOffline.run(id).changes > 0;
  }

  async markAllOffline(): Promise<void> {
    this.markOffline.run();
  }

  async setOperatorLabels(id: string, labels: OperatorLabels): Promise<void> {
    this.updateOperatorLabels.run(JSON.stringify(labels), id);
  }

  async recordDesired(desired: DesiredState, hash: string): Promise<void> {
    this.writeDesired(desired, hash);
  }

  async recordDesiredMany(issued: readonly IssuedDesired[]): Promise<void> {
    this.writeDesiredMany(issued);
  }

  async recordStateReport(state: DeviceState): Promise<StateReportOutcome> {
    return this.writeStateReport(state);
  }

  private writeDesired(desired: DesiredState, hash: string): void {
    const sealed = this.cipher.sealText(JSON.stringify(desired), desiredDocAad(desired.deviceId));
    this.updateDesired.run(desired.revision, this.cipher.sealText(hash, desiredHashAad(desired.deviceId)), sealed, desired.deviceId);
  }

  private openDesired(row: Pick<DeviceRow, 'id' | 'desired_doc'>): DesiredState | null {
    if (row.desired_doc === null) return null;
    if (typeof row.desired_doc === 'string')
      throw new Error(`device "${row.id}": desired document stored unsealed; the hub seals such rows at start`);
    return JSON.parse(this.cipher.openText(row.desired_doc, desiredDocAad(row.id))) as DesiredState;
  }

  private openHash(row: Pick<DeviceRow, 'id' | 'desired_hash'>): string | null {
    if (row.desired_hash === null) return null;
    if (typeof row.desired_hash === 'string')
      throw new Error(`device "${row.id}": desired hash stored unsealed; the hub seals such rows at start`);
    return this.cipher.openText(row.desired_hash, desiredHashAad(row.id));
  }

  private toDevice(row: DeviceRow): StoredDevice {
    return deviceFromRow(row, this.openHash(row), this.openDesired(row));
  }
}
