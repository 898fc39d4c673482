/** The PostgreSQL engine of DeviceStore: desired documents and their hashes sealed as bytea. */
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
import type { PgDatabase } from './database.js';

interface DeviceRow extends DeviceColumns {
  desired_hash: Buffer | null;
  desired_doc: Buffer | null;
}

const FLEET_COLUMNS = 'id, online, last_seen, operator_labels, reported_labels, state, desired_revision';
/** Every column but the desired document. */
const PLANNING_COLUMNS =
  'id, operator_labels, reported_labels, online, last_seen, state, observed_revision, desired_revision, desired_hash, created_at';

export class PgDeviceStore implements DeviceStore {
  constructor(
    private readonly db: PgDatabase,
    private readonly cipher: SecretCipher,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async list(): Promise<StoredDevice[]> {
    return (await this.db.query<DeviceRow>('SELECT * FROM devices ORDER BY id')).map((row) => this.toDevice(row));
  }

  async listForPlanning(): Promise<PlannedDevice[]> {
    const rows = await this.db.query<Omit<DeviceRow, 'desired_doc'>>(`SELECT ${PLANNING_COLUMNS} FROM devices ORDER BY id`);
    return rows.map((row) => {
      const { desired: _, ...device } = deviceFromRow(row, this.openHash(row), null);
      return device;
    });
  }

  async get(id: string): Promise<StoredDevice | undefined> {
    const [row] = await this.db.query<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id]);
    return row ? this.toDevice(row) : undefined;
  }

  async presence(): Promise<DevicePresence[]> {
    const rows = await this.db.query<{ id: string; online: number; last_seen: string | null }>(
      'SELECT id, online, last_seen FROM devices ORDER BY id',
    );
    return rows.map((row) => ({ id: row.id, online: row.online === 1, lastSeen: row.last_seen }));
  }

  async fleetRows(): Promise<FleetDeviceRow[]> {
    return this.db.query<FleetDeviceRow>(`SELECT ${FLEET_COLUMNS} FROM devices ORDER BY id`);
  }

  async desiredApps(id: string): Promise<{ name: string; revision: number }[] | null> {
    const [row] = await this.db.query<Pick<DeviceRow, 'id' | 'desired_doc'>>('SELECT id, desired_doc FROM devices WHERE id = $1', [id]);
    const desired = row ? this.openDesired(row) : null;
    return desired ? desired.apps.map((app) => ({ name: app.name, revision: app.revision })) : null;
  }

  async appPhases(): Promise<{ app: string; phase: string; devices: number }[]> {
    // PostgreSQL reads the apps out of the stored state, so a scrape parses no JSON in JS; a state
    // whose apps are not an array counts nothing, as SQLite's json_each finds no elements in it.
    return this.db.query(
      `SELECT app, phase, devices FROM (
         SELECT a ->> 'name' AS app,
                CASE WHEN d.online = 1 THEN a ->> 'phase' ELSE 'offline' END AS phase,
                count(*) AS devices
           FROM devices d,
                jsonb_array_elements(CASE WHEN jsonb_typeof(d.state::jsonb -> 'apps') = 'array'
                                          THEN d.state::jsonb -> 'apps' ELSE '[]'::jsonb END) a
          WHERE d.state IS NOT NULL
          GROUP BY 1, 2) phases
        ORDER BY app COLLATE "C", phase COLLATE "C"`,
    );
  }

  async ensure(id: string): Promise<boolean> {
    const inserted = await this.db.query('INSERT INTO devices (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING id', [
      id,
      this.now().toISOString(),
    ]);
    return inserted.length > 0;
  }

  async recordState(state: DeviceState): Promise<void> {
    await this.db.query(
      'UPDATE devices SET state = $1, observed_revision = $2, reported_labels = $3, online = 1, last_seen = $4 WHERE id = $5',
      [JSON.stringify(state), state.observedRevision, JSON.stringify(state.labels), this.now().toISOString(), state.deviceId],
    );
  }

  async recordStateReport(state: DeviceState): Promise<StateReportOutcome> {
    // The statements of one WITH see the table as it was before any of them: `previous` is the row the upsert replaces.
    // xmax is 0 on a row version this statement inserted, the transaction's id on one it updated.
    const [row] = await this.db.query<{
      inserted: boolean;
      reported_labels: string | null;
      desired_revision: number | null;
      desired_issued: boolean | null;
      reported_downloads: boolean | null;
    }>(
      `WITH previous AS (
         SELECT reported_labels, desired_revision, desired_hash IS NOT NULL AS desired_issued,
                (state::json -> 'downloads') IS NOT NULL AS reported_downloads
           FROM devices WHERE id = $5
       ), written AS (
         INSERT INTO devices (id, created_at, state, observed_revision, reported_labels, online, last_seen)
         VALUES ($5, $4, $1, $2, $3, 1, $4)
         ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, observed_revision = EXCLUDED.observed_revision,
           reported_labels = EXCLUDED.reported_labels, online = 1, last_seen = EXCLUDED.last_seen
         RETURNING (xmax = 0) AS inserted
       )
       SELECT written.inserted, previous.reported_labels, previous.desired_revision, previous.desired_issued,
              previous.reported_downloads
         FROM written LEFT JOIN previous ON true`,
      [JSON.stringify(state), state.observedRevision, JSON.stringify(state.labels), this.now().toISOString(), state.deviceId],
    );
    return {
      isNew: row?.inserted === true,
      previousLabels: row?.reported_labels ? (JSON.parse(row.reported_labels) as Labels) : {},
      desiredRevision: Number(row?.desired_revision ?? 0),
      desiredIssued: row?.desired_issued === true,
      reportedDownloads: row?.reported_downloads === true,
    };
  }

  async recordOnline(id: string, online: boolean): Promise<void> {
    if (online) await this.db.query('UPDATE devices SET online = 1, last_seen = $1 WHERE id = $2', [this.now().toISOString(), id]);
    else await this.db.query('UPDATE devices SET online = 0 WHERE id = $1 AND online = 1', [id]);
  }

  async recordLastSeen(touches: ReadonlyMap<string, string>): Promise<void> {
    if (touches.size === 0) return;
    // One statement for the whole batch, however many devices it touches.
    await this.db.query(
      `UPDATE devices d SET last_seen = t.at
         FROM unnest($1::text[], $2::text[]) AS t(id, at)
        WHERE d.id = t.id AND (d.last_seen IS NULL OR d.last_seen < t.at)`,
      [[...touches.keys()], [...touches.values()]],
    );
  }

  async recordDisconnected(id: string): Promise<boolean> {
    const changed = await this.db.query('UPDATE devices SET online = 0 WHERE id = $1 AND online = 1 RETURNING id', [id]);
    return changed.length > 0;
  }

  async markAllOffline(): Promise<void> {
    await this.db.query('UPDATE devices SET online = 0 WHERE online <> 0');
  }

  async setOperatorLabels(id: string, labels: OperatorLabels): Promise<void> {
    await this.db.query('UPDATE devices SET operator_labels = $1 WHERE id = $2', [JSON.stringify(labels), id]);
  }

  async recordDesired(desired: DesiredState, hash: string): Promise<void> {
    const sealed = this.cipher.sealText(JSON.stringify(desired), desiredDocAad(desired.deviceId));
    await this.db.query('UPDATE devices SET desired_revision = $1, desired_hash = $2, desired_doc = $3 WHERE id = $4', [
      desired.revision,
      this.cipher.sealText(hash, desiredHashAad(desired.deviceId)),
      sealed,
      desired.deviceId,
    ]);
  }

  async recordDesiredMany(issued: readonly IssuedDesired[]): Promise<void> {
    if (issued.length === 0) return;
    // One statement for the whole chunk: the leader issues a fleet's documents a chunk at a time.
    await this.db.query(
      `UPDATE devices d SET desired_revision = t.revision, desired_hash = t.hash, desired_doc = t.doc
         FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bytea[]) AS t(id, revision, hash, doc)
        WHERE d.id = t.id`,
      [
        issued.map(({ desired }) => desired.deviceId),
        issued.map(({ desired }) => desired.revision),
        issued.map(({ desired, hash }) => this.cipher.sealText(hash, desiredHashAad(desired.deviceId))),
        issued.map(({ desired }) => this.cipher.sealText(JSON.stringify(desired), desiredDocAad(desired.deviceId))),
      ],
    );
  }

  private openDesired(row: Pick<DeviceRow, 'id' | 'desired_doc'>): DesiredState | null {
    if (row.desired_doc === null) return null;
    return JSON.parse(this.cipher.openText(row.desired_doc, desiredDocAad(row.id))) as DesiredState;
  }

  private openHash(row: Pick<DeviceRow, 'id' | 'desired_hash'>): string | null {
    return row.desired_hash === null ? null : this.cipher.openText(row.desired_hash, desiredHashAad(row.id));
  }

  private toDevice(row: DeviceRow): StoredDevice {
    return deviceFromRow(row, this.openHash(row), this.openDesired(row));
  }
}
