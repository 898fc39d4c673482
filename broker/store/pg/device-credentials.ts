/** The PostgreSQL engine of DeviceCredentialStore. */
import { type DeviceCredential, type DeviceCredentialStore, NO_SECRET } from '../../auth/device-credentials.js';
import type { PgDatabase } from './database.js';

interface CredentialRow {
  device_id: string;
  secret_hash: string;
  created_at: string;
  revoked_at: string | null;
}

export class PgDeviceCredentialStore implements DeviceCredentialStore {
  constructor(
    private readonly db: PgDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async get(deviceId: string): Promise<DeviceCredential | undefined> {
    const [row] = await this.db.query<CredentialRow>('SELECT * FROM device_credentials WHERE device_id = $1', [deviceId]);
    return row && { deviceId: row.device_id, secretHash: row.secret_hash, createdAt: row.created_at, revokedAt: row.revoked_at };
  }

  async revokedAt(deviceId: string): Promise<string | undefined> {
    const [row] = await this.db.query<{ revoked_at: string | null }>('SELECT revoked_at FROM device_credentials WHERE device_id = $1', [
      deviceId,
    ]);
    return row?.revoked_at ?? undefined;
  }

  async revoked(): Promise<Map<string, string>> {
    const rows = await this.db.query<{ device_id: string; revoked_at: string }>(
      'SELECT device_id, revoked_at FROM device_credentials WHERE revoked_at IS NOT NULL',
    );
    return new Map(rows.map((row) => [row.device_id, row.revoked_at]));
  }

  async create(deviceId: string, secretHash: string): Promise<boolean> {
    const inserted = await this.db.query(
      'INSERT INTO device_credentials (device_id, secret_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (device_id) DO NOTHING RETURNING device_id',
      [deviceId, secretHash, this.now().toISOString()],
    );
    return inserted.length > 0;
  }

  async revoke(deviceId: string): Promise<void> {
    // One statement: a registered device keeps its first revocation time, an unknown id is claimed as revoked.
    const at = this.now().toISOString();
    await this.db.query(
      `INSERT INTO device_credentials (device_id, secret_hash, created_at, revoked_at) VALUES ($1, $2, $3, $3)
       ON CONFLICT (device_id) DO UPDATE SET revoked_at = COALESCE(device_credentials.revoked_at, EXCLUDED.revoked_at)`,
      [deviceId, NO_SECRET, at],
    );
  }
}
