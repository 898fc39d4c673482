/**
 * Device secrets: the scrypt hash of each registered device's secret, and
 * when it was revoked. A revoked device keeps its row: its id stays claimed,
 * so neither it nor an anonymous client may connect under that id again.
 */
import type { Db } from '../store/db.js';

export interface DeviceCredential {
  deviceId: string;
  secretHash: string;
  createdAt: string;
  revokedAt: string | null;
}

interface CredentialRow {
  device_id: string;
  secret_hash: string;
  created_at: string;
  revoked_at: string | null;
}

/** Stored for a device revoked before it ever had a secret (an anonymous-era device): matches no secret. */
const NO_SECRET = 'revoked';

export class DeviceCredentialStore {
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
    this.insert = db.prepare('INSERT INTO device_credentials (device_id, secret_hash, created_at) VALUES (?, ?, ?)');
    this.revokeOne = db.prepare('UPDATE device_credentials SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL');
    this.insertRevoked = db.prepare(
      'INSERT INTO device_credentials (device_id, secret_hash, created_at, revoked_at) VALUES (?, ?, ?, ?) ON CONFLICT(device_id) DO NOTHING',
    );
    this.selectRevoked = db.prepare<[], { device_id: string; revoked_at: string }>(
      'SELECT device_id, revoked_at FROM device_credentials WHERE revoked_at IS NOT NULL',
    );
  }

  get(deviceId: string): DeviceCredential | undefined {
    const row = this.selectOne.get(deviceId);
    return row && { deviceId: row.device_id, secretHash: row.secret_hash, createdAt: row.created_at, revokedAt: row.revoked_at };
  }

  /** When the device was revoked; undefined if it is not. */
  revokedAt(deviceId: string): string | undefined {
    return this.selectOne.get(deviceId)?.revoked_at ?? undefined;
  }

  /** Every revoked device → when, in one query (a device list must not ask once per device). */
  revoked(): Map<string, string> {
    return new Map(this.selectRevoked.all().map((row) => [row.device_id, row.revoked_at]));
  }

  /** The caller has checked the id is free (inside the same transaction). */
  create(deviceId: string, secretHash: string): void {
    this.insert.run(deviceId, secretHash, this.now().toISOString());
  }

  /** Revokes the device's secret, or claims the id as revoked if it never had one. Idempotent. */
  revoke(deviceId: string): void {
    const at = this.now().toISOString();
    this.revokeOne.run(at, deviceId);
    this.insertRevoked.run(deviceId, NO_SECRET, at, at);
  }
}
