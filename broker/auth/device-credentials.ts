/**
 * Device secrets: the scrypt hash of each registered device's secret, and
 * when it was revoked. A revoked device keeps its row: its id stays claimed,
 * so neither it nor an anonymous client may connect under that id again.
 */

export interface DeviceCredential {
  deviceId: string;
  secretHash: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface DeviceCredentialStore {
  get(deviceId: string): Promise<DeviceCredential | undefined>;
  /** When the device was revoked; undefined if it is not. */
  revokedAt(deviceId: string): Promise<string | undefined>;
  /** Every revoked device → when, in one query (a device list must not ask once per device). */
  revoked(): Promise<Map<string, string>>;
  /** Stores a new device's secret hash; false, and nothing written, when the id already has a row (registered or revoked). */
  create(deviceId: string, secretHash: string): Promise<boolean>;
  /** Revokes the device's secret, or claims the id as revoked if it never had one. Idempotent. */
  revoke(deviceId: string): Promise<void>;
}

/** Stored for a device revoked before it ever had a secret (an anonymous-era device): matches no secret. */
export const NO_SECRET = 'revoked';
