/**
 * Bodies of the hub's provisioning and access routes (registration tokens,
 * service accounts, device revocation, registration), written from the API
 * contract like the rest of client.ts: the CLI talks to whatever hub answers.
 */

export type Role = 'admin' | 'operator' | 'viewer';
export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];

export interface CreateTokenRequest {
  labels?: Record<string, string>;
  maxUses?: number;
  expiresInSeconds?: number;
}

/** `token` is shown this once; the hub keeps only its hash. */
export interface TokenCreated {
  id: string;
  token: string;
  labels: Record<string, string>;
  maxUses: number | null;
  expiresAt: string | null;
}

export interface TokenInfo {
  id: string;
  labels: Record<string, string>;
  maxUses: number | null;
  uses: number;
  expiresAt: string | null;
  revoked: boolean;
  createdAt: string;
}

/** `key` is shown this once; it is the account's MQTT password and HTTP bearer token. */
export interface ServiceAccountCreated {
  name: string;
  role: Role;
  key: string;
}

export interface ServiceAccountInfo {
  name: string;
  role: Role;
  createdAt: string;
}

export interface RegisterRequest {
  token: string;
  deviceId?: string;
  labels?: Record<string, string>;
}

/** What a device gets for its registration token: its identity, and the hub's key to pin. */
export interface Registration {
  deviceId: string;
  secret: string;
  hubKey: string;
  mqtt: { port: number; tlsPort?: number };
}

export interface DeviceRevoked {
  id: string;
  revoked: true;
  disconnected: boolean;
}
