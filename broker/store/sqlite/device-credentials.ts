/** The SQLite engine of DeviceCredentialStore (hub.db). */
import { type DeviceCredential, type DeviceCredentialStore, NO_SECRET } from '../../auth/device-credentials.js';
import type { Db } from './db.js';

interface CredentialRow {
  device_id: string;
  secret_hash: string;
  created_at: string;
  revoked_at: string | null;
}

export class SqliteDeviceCredentialStore implements DeviceCredentialStore {
  private readonly selectOne;
  private readonly insert;
  private readonly revokeOne;
  private readonly insertRevoked;
  private readonly selectRevoked;

  constructor(
    db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.selectOne = db.prepare<[string], CredentialRow>('SELECT * FROM device_credentials WHERE device_id = ?');
    this.insert = db.prepare(
      'INSERT INTO device_credentials (device_id, secret_hash, created_at) VALUES (?, ?, ?) ON CONFLICT(device_id) DO NOTHING',
    );
    this.revokeOne = db.prepare('UPDATE device_credentials SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL');
    this.insertRevoked = db.prepare(
      'INSERT INTO device_credentials (device_id, secret_hash, created_at, revoked_at) VALUES (?, ?, ?, ?) ON CONFLICT(device_id) DO NOTHING',
    );
    this.selectRevoked = db.prepare<[], { device_id: string; revoked_at: string }>(
      'SELECT device_id, revoked_at FROM device_credentials WHERE revoked_at IS NOT NULL',
    );
  }

  async get(deviceId: string): Promise<DeviceCredential | undefined> {
    const row = this.selectOne.get(deviceId);
    return row && { deviceId: row.device_id, secretHash: row.secret_hash, createdAt: row.created_at, revokedAt: row.revoked_at };
  }

  async revokedAt(deviceId: string): Promise<string | undefined> {
    return this.selectOne.get(deviceId)?.revoked_at ?? undefined;
  }

  async revoked(): Promise<Map<string, string>> {
    return new Map(this.selectRevoked.all().map((row) => [row.device_id, row.revoked_at]));
  }

  async create(deviceId: string, secretHash: string): Promise<boolean> {
    return this.insert.run(deviceId, secretHash, this.now().toISOString()).changes > 0;
  }

  async revoke(deviceId: string): Promise<void> {
    const at = this.now().toISOString();
    this.revokeOne.run(at, deviceId);
    this.insertRevoked.run(deviceId, NO_SECRET, at, at);
  }
}
